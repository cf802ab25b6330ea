"""The one JSON writer of the package: indented, NaN written as null, written atomically
(``airhockey.writing``: never through a link, a full disk reported as such)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from airhockey.writing import write_atomic


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (JSON null), through dicts, lists and tuples."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, payload: Any) -> Path:
    """Writes ``payload`` as indented JSON to ``path`` through ``<name>.tmp`` and a rename, so a
    crash never leaves a half-written file; NaN becomes null, which every JSON reader accepts.

    Raises:
        UserError: when the disk is full (``path`` is left as it was, the temporary file removed).
    """
    return write_atomic(path, json.dumps(json_safe(payload), indent=2) + "\n")
