"""The benchmark: every registered method gets its leaderboard row, and an interrupted benchmark finishes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airhockey.learn.methods import register, unregister
from airhockey.learn.protocol.benchmark import QUICK, run_benchmark
from airhockey.learn.protocol.leaderboard import leaderboard, read_leaderboard, render_leaderboard
from airhockey.learn.protocol.results import results_of
from tests.learn.methods.test_registry import Reconstruct
from tests.learn.protocol.handmade import handmade_rest

TINY = dataclasses.replace(
    QUICK,
    pretext=dataclasses.replace(QUICK.pretext, steps=4),
    compare=dataclasses.replace(QUICK.compare, budgets=(1, None), frames_k=(), probes=False),
)


def test_a_method_added_to_the_registry_gets_its_row(tmp_path):
    register(Reconstruct)
    try:
        config = dataclasses.replace(TINY, methods=("next_frame", "test_reconstruct"))
        board = run_benchmark(
            tmp_path / "bench", config, smoke_test=True, progress=False, say=lambda line: None
        )
    finally:
        unregister(Reconstruct.name)
    rows = {row.arm: row for row in board.rows}
    assert [row.arm for row in board.rows if row.method] == ["next_frame", "test_reconstruct"]
    assert set(rows["test_reconstruct"].cells) == {"1", "all"} and board.rows[0].arm == "scratch"
    assert rows["test_reconstruct"].pretext.steps == (4,) and rows["scratch"].pretext is None
    assert rows["test_reconstruct"].pretext.flops == pytest.approx(
        4 * rows["test_reconstruct"].pretext.flops_per_step
    )
    differences = rows["next_frame"].at("1", 1).difference
    assert set(differences) == {"scratch", "practitioner"} and differences["scratch"].ci95 is not None
    assert board.task == "leftright" and set(board.headroom) == {"1", "all"} and board.ks == (1,)
    assert set(board.ranks) == {"1", "all"} and board.oracle.head["all"][1].accuracy_mean >= 0
    assert read_leaderboard(tmp_path / "bench") == board
    text = (tmp_path / "bench" / "leaderboard.md").read_text()
    assert "smoke test" in text and "| test_reconstruct |" in text
    for name in ("leaderboard.json", "leaderboard_accuracy.png", "leaderboard_rollouts.png"):
        assert (tmp_path / "bench" / name).is_file(), name


@pytest.mark.slow
def test_an_interrupted_benchmark_finishes_and_reuses_what_was_done(tmp_path):
    out = tmp_path / "bench"
    config = dataclasses.replace(TINY, methods=("next_frame",))
    script = (
        "import dataclasses, sys; from tests.learn.protocol.test_benchmark import TINY; "
        "from airhockey.learn.protocol.benchmark import run_benchmark; "
        "run_benchmark(sys.argv[1], dataclasses.replace(TINY, methods=('next_frame',)), progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    child = subprocess.Popen([sys.executable, "-c", script, str(out)], env=env)
    log = out / "compare" / "runs.jsonl"
    deadline = time.monotonic() + 300
    while not (log.is_file() and len(log.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        assert child.poll() is None, "the benchmark ended before it could be interrupted"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (out / "leaderboard.json").exists()
    done = log.read_text().splitlines()
    pretext = out / "pretext" / "next_frame-s0" / "best.pt"
    stamp = pretext.stat().st_mtime_ns

    board = run_benchmark(out, config, progress=False, say=lambda line: None)
    assert pretext.stat().st_mtime_ns == stamp  # the finished pretext run was reused, not retrained
    finished = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    complete = [json.loads(line) for line in done if line.endswith("}")]
    assert finished[: len(complete)] == complete  # the runs done before the kill were kept ...
    # ... and not run again: 2 budgets x 2 repeats x 3 arms, and the search's 2 schedules x 3 arms
    assert (
        sum(not r["search"] for r in finished) == 2 * 2 * 3 and sum(bool(r["search"]) for r in finished) == 6
    )
    assert [row.arm for row in board.rows] == ["scratch", "practitioner", "next_frame"]
    assert (out / "leaderboard.md").is_file()
    # The killed call's stage times count: the total sums both calls, stage by stage.
    first, second = board.sessions
    assert set(first["seconds"]) == {"generate", "pretext"} and set(second["seconds"]) == {
        "generate",
        "pretext",
        "compare",
    }
    for stage in ("generate", "pretext"):
        assert board.seconds[stage] == pytest.approx(first["seconds"][stage] + second["seconds"][stage])
    assert "summed over the 2 calls" in (out / "leaderboard.md").read_text()


def summary(mean: float) -> dict:
    return {"accuracy_mean": mean, "accuracy_ci95": [mean - 0.01, mean + 0.01]}


def by_hand() -> dict:
    """A comparison's results.json by hand: two arms at budgets 4 and all (20 episodes), k = 1 and 4,
    the oracle at both; the sections the leaderboard does not read are empty."""
    return {
        "format_version": 1,
        "arms": ["scratch", "m"],
        "reference": "scratch",
        "arm_details": {
            arm: {"name": arm, "kind": kind, "method": method, "encoder": {}, "pretext_runs": []}
            for arm, kind, method in (("scratch", "scratch", None), ("m", "pretrained", "m"))
        },
        "threshold": 0.8,
        "smoke_test": False,
        "budgets": [
            {
                "labelled_episodes": n,
                "budget": n if n < 20 else "all",
                "arms": {"scratch": summary(0.6 + n / 100), "m": summary(0.7 + n / 100)},
                "paired_difference": {
                    "m": {
                        "mean": 0.1,
                        "ci95": [0.05, 0.15],
                        "per_repeat": [],
                        "wins": 0,
                        "ties": 0,
                        "repeats": 0,
                    }
                },
            }
            for n in (4, 20)
        ],
        "oracle": [
            {"labelled_episodes": n, "head": summary(0.9), "boosting": summary(0.95)} for n in (4, 20)
        ],
        "frames_k": {
            arm: {"1": summary(0.8), "4": summary(0.85 if arm == "m" else 0.8)} for arm in ("scratch", "m")
        },
        "frames_k_difference": None,
        "frames_k_budget": 4,
        "oracle_frames_k": {
            "1": {"head": summary(0.9), "boosting": summary(0.95)},
            "4": {"head": summary(0.97), "boosting": summary(0.98)},
        },
        "probes": {
            "m": {"puck_x": 0.8, "puck_y": 0.6, "puck_vx": 0.5, "puck_vy": 0.3, "bar_x": 1.0, "bar_y": 0.9}
        },
        **handmade_rest([4, 20]),
    }


def test_the_leaderboard_rows_come_from_the_comparisons_results():
    results = results_of(by_hand(), "by hand")
    facts = {"settings": {}, "command": "", "sessions": [{}, {}], "smoke_test": False}
    board = leaderboard(results, {}, seconds={"generate": 1.0, "pretext": 2.0, "compare": 3.0}, **facts)
    scratch, m = board.rows
    assert scratch.pretext is None and scratch.at("4", 1).difference == {}
    assert board.budgets == ("4", "all") and board.ks == (1, 4)
    assert set(m.cells) == {"4", "all"} and m.at("all", 1).accuracy.accuracy_mean == pytest.approx(0.9)
    assert (
        m.at("4", 1).gap_to_oracle == pytest.approx(0.74 - 0.9)
        and m.at("4", 4).accuracy.accuracy_mean == 0.85
    )
    assert m.at("all", 4) is None and m.at("4", 1).difference["scratch"].mean == 0.1
    assert m.probe_r2.puck_position == pytest.approx(0.7)
    assert m.probe_r2.puck_velocity == pytest.approx(0.4)
    assert board.oracle.boosting["4"][4].accuracy_mean == 0.98
    assert board.ranks["4"][1] == {"scratch": 2, "m": 1}  # m's interval lies above scratch's
    text = render_leaderboard(board, rollouts=False)
    k4 = text[text.index("## Accuracy, k = 4") :].splitlines()
    assert k4[2] == "| arm | 4 ep. |" and "| oracle: boosted trees | 98.0% [97.0, 99.0] |" in k4
    assert "summed over the 2 calls" in text
