"""Method families compared as families: each family's draws averaged over its arms, the difference
paired draw by draw, its place on the leaderboard page and in leaderboard.json."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airhockey.learn.protocol.families import compare_families, family_runs
from airhockey.learn.protocol.leaderboard_records import read_leaderboard
from airhockey.learn.protocol.results import Results, results_of
from airhockey.records import to_json
from tests.learn.protocol.handmade import handmade_rest
from tests.learn.protocol.test_leaderboard import board_of, oracle

HITS = {
    # arm: each draw's correct frames on the two test episodes of 10 scored frames each
    "scratch": ([5, 5], [6, 6]),
    "next_frame": ([6, 8], [7, 7]),
    "skip_clip": ([8, 8], [9, 7]),
    "videomae": ([9, 9], [8, 8]),
}


def run(arm: str, draw: int) -> dict:
    hits = HITS[arm][draw]
    return {
        "arm": arm,
        "repeat": draw,
        "pretext_run": draw,
        "accuracy": sum(hits) / 20,
        "episode_hits": hits,
        "episode_frames": [10, 10],
    }


def arm_entry(arm: str) -> dict:
    runs = [run(arm, d) for d in (0, 1)]
    mean = sum(r["accuracy"] for r in runs) / 2
    return {"accuracy_mean": mean, "accuracy_ci95": [mean - 0.05, mean + 0.05], "runs": runs}


def results() -> Results:
    """Scratch, two of the seeds' methods and one current method at 4 episodes, k = 1."""
    budget = {
        "labelled_episodes": 4,
        "budget": 4,
        "arms": {arm: arm_entry(arm) for arm in HITS},
        "paired_difference": {
            arm: {"mean": 0.0, "ci95": None, "per_repeat": [], "wins": 0, "ties": 0, "repeats": 2}
            for arm in list(HITS)[1:]
        },
        "context_frames": 1,
        "to_baselines": {},
    }
    data = {
        "format_version": 2,
        "arms": list(HITS),
        "reference": "scratch",
        "arm_details": {
            arm: {
                "name": arm,
                "kind": "scratch" if arm == "scratch" else "pretrained",
                "method": None if arm == "scratch" else arm,
                "encoder": {},
                "pretext_runs": [],
            }
            for arm in HITS
        },
        "threshold": 0.8,
        "smoke_test": False,
        "budgets": [budget],
        "oracle": [oracle(4, 1)],
        "by_k": [],
        "frames_k_budget": None,
        "oracle_by_k": [],
        "probes": None,
        **handmade_rest([4]),
    }
    return results_of(data, "by hand")


def test_a_family_is_its_arms_averaged_draw_by_draw():
    at = results().at(4, 1)
    seeds = family_runs(at, ["next_frame", "skip_clip"])
    assert [r["episode_hits"] for r in seeds] == [[7.0, 8.0], [8.0, 7.0]]
    assert [r["accuracy"] for r in seeds] == [0.75, 0.75] and [r["pretext_run"] for r in seeds] == [0, 1]
    shuffled = results().at(4, 1)
    shuffled.arms["skip_clip"].runs[0]["repeat"] = 1  # draws that do not pair
    with pytest.raises(ValueError, match="not of the same draws"):
        family_runs(shuffled, ["next_frame", "skip_clip"])


def test_the_current_family_against_the_seeds_paired_by_draw():
    (c,) = compare_families(results())
    assert (c.budget, c.k, c.families) == ("4", 1, ("current", "seeds"))
    assert c.arms == (("videomae",), ("next_frame", "skip_clip"))
    assert c.means == pytest.approx((0.85, 0.75)) and c.best == ("videomae", "skip_clip")
    assert c.difference.mean == pytest.approx(0.10)  # draw 0: 0.90 - 0.75, draw 1: 0.80 - 0.75
    assert c.difference.ci95 is not None and c.difference.ci95[0] <= 0.10 <= c.difference.ci95[1]
    only_seeds = dataclasses.replace(results(), arms=("scratch", "next_frame", "skip_clip"))
    assert compare_families(only_seeds) == ()


def test_the_families_on_the_page_and_in_leaderboard_json(tmp_path):
    from airhockey.learn.protocol.leaderboard import render_leaderboard

    board = board_of(results())
    assert board.families == compare_families(results())
    page = render_leaderboard(board, rollouts=False)
    assert "## Method families" in page
    assert "| current minus seeds | +10.0 [" in page
    assert "| seeds | 75.0% (best: skip_clip) |" in page
    (tmp_path / "leaderboard.json").write_text(json.dumps(to_json(board)))
    assert read_leaderboard(tmp_path) == board


def test_the_tasks_page_sums_up_the_families_of_every_task():
    from airhockey.learn.protocol.task_benchmark import TaskEntry, render_tasks_board, tasks_board

    with_both = TaskEntry("a", "same", board_of(results()))
    seeds_only = TaskEntry(
        "b", "reduced", board_of(dataclasses.replace(results(), arms=("scratch", "skip_clip")))
    )
    page = render_tasks_board(tasks_board({"a": with_both, "b": seeds_only}, smoke_test=False))
    rows = [line for line in page.splitlines() if line.startswith("| a | 4 | 1 | +10.0 [")]
    assert len(rows) == 1 and rows[0].endswith("| videomae | skip_clip |")
    assert not any(line.startswith("| b | 4 | 1 | +") for line in page.splitlines())
