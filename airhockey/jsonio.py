"""The one JSON writer of the package: indented, NaN written as null, written atomically."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


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
    """Writes ``payload`` as indented JSON to ``path`` through a temporary file and a rename, so a
    crash never leaves a half-written file; NaN becomes null, which every JSON reader accepts."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_safe(payload), indent=2) + "\n")
    os.replace(tmp, path)
    return path
