"""The leaderboard from a comparison's results: every budget and k, the differences to each
supervised baseline and to the better of them, the goal, the pretext cost, and older files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airhockey.cli.study import board_lines
from airhockey.errors import UserError
from airhockey.learn.protocol.leaderboard import leaderboard, render_leaderboard
from airhockey.learn.protocol.leaderboard_records import FORMAT_VERSION, leaderboard_of, read_leaderboard
from airhockey.learn.protocol.plots import (
    baseline_difference,
    better_baseline,
    plot_accuracy_vs_budget,
    supervised_arms,
)
from airhockey.learn.protocol.results import Results, results_of
from airhockey.learn.protocol.task_benchmark import TaskEntry, best_methods, read_tasks_board, tasks_board
from airhockey.records import to_json
from tests.learn.protocol.handmade import handmade_rest

DOCS = Path(__file__).parents[3] / "docs" / "results"
ARMS = {"scratch": None, "practitioner": None, "m": "m"}
"""Each arm's method: two supervised baselines and one pretrained arm."""


def summary(mean: float, half: float = 0.01) -> dict:
    return {"accuracy_mean": mean, "accuracy_ci95": [mean - half, mean + half]}


def difference(mean: float) -> dict:
    return {
        "mean": mean,
        "ci95": [mean - 0.02, mean + 0.02],
        "per_repeat": [],
        "wins": 0,
        "ties": 0,
        "repeats": 0,
    }


ACCURACY = {
    # (budget, k): scratch, practitioner, m
    (2, 1): (0.60, 0.55, 0.70),  # scratch the better baseline
    (4, 1): (0.62, 0.75, 0.78),  # the practitioner the better baseline
    (2, 2): (0.58, 0.66, 0.60),  # the practitioner, m behind it
    (4, 2): (0.80, 0.70, 0.95),  # scratch
}


def budget(n: int, k: int) -> dict:
    scratch, practitioner, m = ACCURACY[n, k]
    return {
        "labelled_episodes": n,
        "budget": n,
        "arms": {"scratch": summary(scratch), "practitioner": summary(practitioner), "m": summary(m, 0.002)},
        "paired_difference": {
            "practitioner": difference(practitioner - scratch),
            "m": difference(m - scratch),
        },
        "context_frames": k,
        "to_baselines": {
            "practitioner": {"scratch": difference(scratch - practitioner), "m": difference(m - practitioner)}
        },
    }


def oracle(n: int, k: int) -> dict:
    return {
        "labelled_episodes": n,
        "context_frames": k,
        "head": summary(0.9),
        "boosting": summary(0.97),
        "ceiling": summary(0.97),
        "ceiling_model": "boosting",
    }


def comparison() -> Results:
    """A comparison's results (format 2) by hand: budgets 2 and 4 of 20 training episodes, k = 1
    and 2, scratch, the practitioner and one pretrained arm m, the oracle everywhere."""
    data = {
        "format_version": 2,
        "arms": list(ARMS),
        "reference": "scratch",
        "arm_details": {
            arm: {
                "name": arm,
                "kind": "pretrained" if method else arm,
                "method": method,
                "encoder": {},
                "pretext_runs": [],
            }
            for arm, method in ARMS.items()
        },
        "threshold": 0.8,
        "smoke_test": False,
        "budgets": [budget(n, 1) for n in (2, 4)],
        "oracle": [oracle(n, 1) for n in (2, 4)],
        "by_k": [budget(n, 2) for n in (2, 4)],
        "frames_k_budget": None,
        "oracle_by_k": [oracle(n, 2) for n in (2, 4)],
        "probes": None,
        **handmade_rest([2, 4]),
    }
    return results_of(data, "by hand")


METRICS = {
    "m": [
        {
            "steps": 10,
            "train_seconds_this_session": 1.5,
            "parameters": 100,
            "flops_per_step": 2e9,
            "pretext_flops": 2e10,
        },
        {
            "steps": 10,
            "train_seconds_this_session": 2.5,
            "parameters": 100,
            "flops_per_step": 2e9,
            "pretext_flops": 2.5e10,
        },
    ]
}


def board_of(results: Results, metrics: dict = METRICS):
    facts = {"settings": {}, "command": "", "sessions": [{}], "smoke_test": False}
    return leaderboard(results, metrics, seconds={"generate": 1.0, "pretext": 2.0, "compare": 3.0}, **facts)


def test_every_budget_and_k_with_differences_to_each_baseline_and_the_oracle():
    board = board_of(comparison())
    assert board.budgets == ("2", "4") and board.ks == (1, 2)
    scratch, practitioner, m = board.rows
    assert {key: set(by_k) for key, by_k in m.cells.items()} == {"2": {1, 2}, "4": {1, 2}}
    cell = m.at("4", 2)
    assert cell.accuracy.accuracy_mean == 0.95 and cell.gap_to_oracle == pytest.approx(0.95 - 0.97)
    assert cell.difference["scratch"].mean == pytest.approx(0.15)
    assert cell.difference["practitioner"].mean == pytest.approx(0.25)
    assert set(scratch.at("2", 1).difference) == {"practitioner"}  # never itself
    assert practitioner.at("2", 2).difference["scratch"].mean == pytest.approx(0.08)
    assert (
        board.oracle.ceiling["2"][2].accuracy_mean == 0.97 and board.oracle.head["4"][1].accuracy_mean == 0.9
    )
    # Ranks per budget and k: m's interval lies above both baselines' at (4, 2), not at (2, 2).
    assert board.ranks["4"][2] == {"scratch": 2, "practitioner": 3, "m": 1}
    assert board.ranks["2"][2] == {"scratch": 3, "practitioner": 1, "m": 2}
    assert set(board.headroom) == {"2", "4"} and all(set(by_k) == {1, 2} for by_k in board.headroom.values())
    room = board.headroom["4"][1]
    assert room.earns_place and room.baseline.accuracy_mean == 0.75 and room.ceiling.accuracy_mean == 0.97
    assert board.goal.baselines == ("scratch", "practitioner") and board.goal.found.met


def test_the_console_shows_every_k_of_every_arm():
    board = board_of(comparison())
    lines = board_lines("leftright", board)
    assert lines[0] == "leftright k=1 scratch: 2: 60.0%, 4: 62.0%"
    assert lines[-1] == "leftright k=2 m: 2: 60.0%, 4: 95.0%"  # m.at("4", 2) is 0.95
    assert [line.split(":")[0] for line in lines] == [
        f"leftright k={k} {arm}" for k in (1, 2) for arm in ("scratch", "practitioner", "m")
    ]


def test_the_plot_measures_pretraining_against_the_better_baseline(tmp_path):
    results = comparison()
    at_2, at_4 = results.at(2, 2), results.at(4, 2)
    assert better_baseline(results, at_2) == "practitioner" and better_baseline(results, at_4) == "scratch"
    assert baseline_difference(results, at_2, "m") == at_2.difference("m", "practitioner")
    assert baseline_difference(results, at_4, "m").mean == pytest.approx(0.15)
    assert supervised_arms(results) == ["scratch", "practitioner"]
    assert plot_accuracy_vs_budget(results, tmp_path / "budget.png").stat().st_size > 0


def test_pretraining_is_measured_against_the_better_baseline_at_each_setting():
    board = board_of(comparison())
    expected = {("2", 1): "scratch", ("4", 1): "practitioner", ("2", 2): "practitioner", ("4", 2): "scratch"}
    for (key, k), baseline in expected.items():
        assert board.better_baseline(key, k) == baseline
        scratch, practitioner, m = ACCURACY[int(key), k]
        better = max(scratch, practitioner)
        assert board.minus_better_baseline("m", key, k).mean == pytest.approx(m - better)
    text = render_leaderboard(board, rollouts=False)
    assert text.count("| better baseline | scratch | practitioner |") == 1  # k = 1
    assert "| better baseline | practitioner | scratch |" in text  # k = 2
    assert "| m | +10.0 [8.0, 12.0] | +3.0 [1.0, 5.0] |" in text
    assert "| m | -6.0 [-8.0, -4.0] | +15.0 [13.0, 17.0] |" in text
    assert "## Accuracy, k = 1" in text and "## Accuracy, k = 2" in text
    assert "Goal (a pretrained arm >= 5 points" in text and "met by m at 2 labelled episodes, k = 1" in text


def test_pretext_flops_are_summed_over_a_methods_runs_and_missing_in_older_runs():
    board = board_of(comparison())
    cost = board.rows[2].pretext
    assert cost.runs == 2 and cost.seconds == 4.0 and cost.flops == pytest.approx(4.5e10)
    assert cost.flops_per_step == 2e9
    assert "| m | n/a | n/a | n/a | 2 | 10 | 4 | 100 | 2 | 0.045 |" in render_leaderboard(board, False)
    older = {"m": [{**METRICS["m"][0], "pretext_flops": None}, METRICS["m"][1]]}
    del older["m"][0]["pretext_flops"]
    cost = board_of(comparison(), older).rows[2].pretext
    assert cost.flops is None
    assert "| 100 | 2 | - |" in render_leaderboard(board_of(comparison(), older), False)


def test_a_leaderboard_written_and_read_is_the_same(tmp_path):
    board = board_of(comparison())
    (tmp_path / "leaderboard.json").write_text(json.dumps(to_json(board)))
    assert read_leaderboard(tmp_path) == board
    (tmp_path / "leaderboard.json").write_text(json.dumps({**to_json(board), "format_version": 99}))
    with pytest.raises(UserError, match=r"version 99.* reads 3 and older"):
        read_leaderboard(tmp_path)


def test_an_older_leaderboard_is_upgraded_with_every_number_in_its_place():
    old = json.loads((DOCS / "leaderboard.json").read_text())  # version 0: k at 240 = all episodes
    v2 = {**old, "format_version": 2, "task": "leftright", "headroom": {}}
    for data in (old, v2):
        board = leaderboard_of(data, "old")
        assert board.format_version == FORMAT_VERSION and board.ks == (1, 4)
        assert board.budgets == ("1", "4", "16", "all") and board.goal is None
        skip = next(row for row in board.rows if row.arm == "skip_clip")
        stored = next(row for row in old["rows"] if row["arm"] == "skip_clip")
        assert skip.at("16", 1).accuracy.accuracy_mean == stored["accuracy"]["16"]["accuracy_mean"]
        assert skip.at("16", 1).difference["scratch"].mean == stored["difference_to_scratch"]["16"]["mean"]
        assert skip.at("16", 1).gap_to_oracle == stored["gap_to_oracle"]["16"]
        assert skip.at("all", 4).accuracy.accuracy_mean == stored["accuracy_k"]["4"]["accuracy_mean"]
        assert skip.at("all", 4).difference == {} and skip.at("16", 4) is None
        assert board.ranks["all"] == {1: old["ranks"]["all"]}
        assert (
            board.oracle.head["all"][4].accuracy_mean
            == old["oracle"]["accuracy_k"]["4"]["head"]["accuracy_mean"]
        )
    # k runs at a budget the old page did not show get that budget's own key.
    protocol = leaderboard_of(json.loads((DOCS / "protocol" / "leaderboard.json").read_text()), "old")
    assert protocol.budgets == ("1", "4", "16", "64", "all") and set(protocol.rows[1].cells["64"]) == {1, 4}


def test_each_tasks_best_method_at_each_budget_and_k_and_an_older_tasks_board(tmp_path):
    board = board_of(comparison())
    assert best_methods(board) == {"2": {1: "m", 2: "m"}, "4": {1: "m", 2: "m"}}
    summary = tasks_board({"a": TaskEntry("a", "same", board)}, smoke_test=False)
    assert summary.mean_rank == {"m": pytest.approx((1 + 1 + 2 + 1) / 4)}
    old_board = json.loads((DOCS / "leaderboard.json").read_text())
    v1 = {"format_version": 1, "tasks": {"a": {"folder": "a", "edition": "same", "board": old_board}}}
    (tmp_path / "leaderboard.json").write_text(
        json.dumps({**v1, "mean_rank": {"skip_clip": 1.0}, "best": {"a": "skip_clip"}, "smoke_test": False})
    )
    upgraded = read_tasks_board(tmp_path)
    assert upgraded.best == {"a": {"all": {1: "skip_clip"}}} and upgraded.tasks["a"].board.ks == (1, 4)
