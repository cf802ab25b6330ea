"""Re-rendering stored comparisons: the plots and pages of every ``results.json`` (and the
``leaderboard.json`` beside it) under a folder, drawn again with this version's code.

A comparison's report folder keeps what it measured in ``results.json``; its pages and plots are
drawn from that file alone (the leaderboard's rollouts excepted: they need the test data and the
pretext runs, so a stored rollouts plot is linked, not redrawn). Run it after a change to the plots
or pages (a second folder writes there instead, mirroring the first's tree)::

    python -m airhockey.learn.protocol.rerender docs/results [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from airhockey.learn.protocol.leaderboard import (
    ACCURACY_PLOT,
    LEADERBOARD_FILE,
    PROBES_PLOT,
    ROLLOUTS_PLOT,
    read_leaderboard,
    render_leaderboard_page,
)
from airhockey.learn.protocol.plots import plotted
from airhockey.learn.protocol.report import render_report
from airhockey.learn.protocol.results import RESULTS_FILE, read_results


def rerender(folder: str | Path, out: str | Path | None = None) -> list[Path]:
    """Draws again the plots and pages of every stored comparison under ``folder``.

    Args:
        folder: searched recursively for ``results.json``; a ``leaderboard.json`` beside one is
            rendered from the same results.
        out: where the files go, mirroring ``folder``'s tree; None: beside the JSON they come from.

    Returns:
        The files written, sorted.

    Raises:
        UserError: for a stored file that is damaged or of an unknown version (one line naming it).
    """
    folder = Path(folder)
    written: set[Path] = set()
    for stored in sorted(folder.rglob(RESULTS_FILE)):
        here = stored.parent
        target = here if out is None else Path(out) / here.relative_to(folder)
        target.mkdir(parents=True, exist_ok=True)
        results = read_results(stored)
        written.add(render_report(results, target))
        written |= {target / name for name in plotted(results).values()}
        if (here / LEADERBOARD_FILE).is_file():
            board = read_leaderboard(here / LEADERBOARD_FILE)
            written.add(render_leaderboard_page(board, results, target, (here / ROLLOUTS_PLOT).is_file()))
            written |= {target / ACCURACY_PLOT, *([target / PROBES_PLOT] if results.probes else [])}
    return sorted(written)


if __name__ == "__main__":
    for path in rerender(*(sys.argv[1:3] or ["docs/results"])):
        print(path)
