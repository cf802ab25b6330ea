"""How the report and the leaderboard write numbers: percentages, points, intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``48.0%``); 'n/a' for None or NaN."""
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def interval(ci: Sequence[float] | None, scale: float = 100.0) -> str:
    """``[lo, hi]`` of a 95% interval in percent (``scale`` 100), after the value it belongs to:
    ``48.0% [45.6, 50.4]``, the unit written once, on the value."""
    return "n/a" if ci is None else f"[{signed(scale * ci[0], False)}, {signed(scale * ci[1], False)}]"


def whole_interval(ci: Sequence[float] | None) -> str:
    """An interval of whole numbers (frames), as ``[lo, hi]``."""
    return "n/a" if ci is None else f"[{ci[0]:.0f}, {ci[1]:.0f}]"


def signed(value: float, plus: bool = True) -> str:
    """``value`` with one decimal, without a negative zero."""
    text = f"{value:+.1f}" if plus else f"{value:.1f}"
    return text.replace("-0.0", "0.0").replace("+0.0", "0.0") if abs(value) < 0.05 else text


def points(value: float) -> str:
    """A difference of fractions in percentage points, signed (``+4.2``)."""
    return signed(100 * value)


def number(value: float | None, digits: int = 1, unit: str = "") -> str:
    """``value`` with ``digits`` decimals and ``unit``; 'not reached' for None or NaN."""
    return "not reached" if value is None or math.isnan(value) else f"{value:.{digits}f}{unit}"
