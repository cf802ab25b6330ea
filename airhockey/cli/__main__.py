"""``python -m airhockey.cli``: the ``airhockey`` command."""

from airhockey.cli import main

main()
