"""The error type for mistakes a user can make: bad paths, bad options, corrupt files."""


class UserError(ValueError):
    """Raised for input a user can fix; the CLI prints its message on one line, with no traceback."""
