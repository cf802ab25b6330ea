"""Tasks in the benchmark: one benchmark per task, each task's headroom, the leaderboard across them."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.learn.protocol.leaderboard import Entry, headroom, read_leaderboard
from airhockey.learn.protocol.task_benchmark import read_tasks_board, run_tasks_benchmark
from tests.learn.protocol.test_benchmark import TINY


def entry(lo: float, hi: float) -> Entry:
    return Entry((lo + hi) / 2, (lo, hi))


def test_a_task_earns_a_place_only_when_the_ceiling_lies_above_both_baselines():
    ceiling = entry(0.90, 0.95)
    assert headroom(entry(0.50, 0.60), entry(0.70, 0.80), ceiling).earns_place
    assert not headroom(entry(0.50, 0.60), entry(0.85, 0.91), ceiling).earns_place  # baseline overlaps
    assert not headroom(entry(0.89, 0.92), entry(0.70, 0.80), ceiling).earns_place  # random overlaps
    assert headroom(entry(0.50, 0.60), None, ceiling).earns_place  # no baseline: scratch alone
    assert not headroom(entry(0.50, 0.60), None, Entry(0.93, None)).earns_place
    assert not headroom(entry(0.50, 0.60), None, None).earns_place


@pytest.mark.slow
def test_two_tasks_each_get_their_folder_and_table(tmp_path):
    config = dataclasses.replace(
        TINY,
        test_data=dataclasses.replace(TINY.test_data, episodes=10),
        methods=("next_frame",),
    )
    out = tmp_path / "bench"
    board = run_tasks_benchmark(
        out, config, ("leftright", "buttons5"), edition="reduced", progress=False, say=lambda line: None
    )
    assert list(board.tasks) == ["leftright", "buttons5"]
    assert [board.tasks[t].edition for t in board.tasks] == ["same", "reduced"]
    for task, labels in (("leftright", 2), ("buttons5", 5)):
        task_board = read_leaderboard(out / task)
        assert task_board.task == task and len(task_board.test_data.label_names) == labels
        assert (out / task / "pretext" / "next_frame-s0").is_dir()
        assert set(task_board.headroom) == set(task_board.budgets)
        assert all(set(by_k) == set(task_board.ks) for by_k in task_board.headroom.values())
        assert "Accuracy by horizon" in (out / task / "compare" / "report.md").read_text()
    assert board.tasks["buttons5"].board.settings["compare"]["repeats"] == 2
    assert set(board.mean_rank) == {"next_frame"}
    for task in board.tasks:
        assert board.best[task] == {key: {1: "next_frame"} for key in board.tasks[task].board.budgets}
    assert read_tasks_board(out) == board
    page = (out / "leaderboard.md").read_text()
    assert page.count("## Task `") == 2 and "| ceiling (oracle) |" in page and "a reduced edition" in page
    assert board.tasks["buttons5"].board.budgets == ("1",)  # reduced: the goal's budget alone
    assert "| next_frame | 1.00 | 2 |" in page and "| buttons5 | 1 | 1 | next_frame |" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tasks", "nope"], "unknown task 'nope'"),
        (["--tasks", "leftright", "--labels", "all"], "not both"),
        (["--labels", "some"], "--labels must be"),
        (["--tasks-edition", "tiny"], "--tasks-edition must be"),
    ],
)
def test_a_bad_task_option_is_one_line_before_anything_is_written(tmp_path, args, message):
    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["learn", "benchmark", str(out), "--quick", *args])
    lines = result.stderr.strip().splitlines()
    assert (
        result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    )
    assert not out.exists()
