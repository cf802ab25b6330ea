"""The hyperparameter search: run at every k the comparison reports, its choice used at that k; its space."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig, apply_settings
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.jobs import SCHEDULE_FIELDS
from airhockey.learn.protocol.results import read_results, results_of
from airhockey.records import to_json
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

CONFIG = CompareConfig(
    budgets=(2,),
    repeats=2,
    training=SCHEDULE,
    hidden=8,
    after_hit_effect=False,
    oracle=False,
    probes=False,
    search_lrs=(1e-3,),
    search_budget=8,
    search_draws=1,
)
"""One budget, two candidates (one rate, both schedules) on one draw of 8 episodes."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def run_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def schedule(candidate: dict) -> dict:
    return {k: candidate[k] for k in SCHEDULE_FIELDS}


def test_the_search_runs_at_every_k_and_each_k_runs_its_own_choice(runs, tmp_path):
    out = tmp_path / "report"
    compare_on_dataset(runs.data, [runs.pretext], out, CONFIG, progress=False)
    first = run_log(out)
    assert {r["context_frames"] for r in first if r["search"]} == {1}
    assert read_results(out).search.frames_k is None  # no k-frame runs, no search at k > 1
    # Extended with k = 2: the k = 1 search is reused, the search runs again at k = 2.
    config = dataclasses.replace(CONFIG, frames_k=(2,))
    results = compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    logged = run_log(out)
    assert logged[: len(first)] == first
    added = [r for r in logged[len(first) :] if r["search"]]
    assert sorted((r["arm"], r["search"], r["context_frames"]) for r in added) == sorted(
        (arm, name, 2)
        for arm in results.arms
        for name in ("lr=0.001,unfrozen", "lr=0.001,frozen_then_unfrozen")
    )
    search = results.search
    assert search is not None and search.frames_k is not None
    assert set(search.by_k()) == {1, 2} and all(
        set(arms) == set(results.arms) for arms in search.by_k().values()
    )
    for k, choices in search.by_k().items():
        for arm, choice in choices.items():
            runs_at_k = [
                r for r in logged if r["arm"] == arm and not r["search"] and r["context_frames"] == k
            ]
            assert len(runs_at_k) == 2
            assert all(r["schedule"] == schedule(search.candidates[choice.chosen]) for r in runs_at_k)
    # The record reads back, and one written before the search ran per k still reads.
    assert results_of(json.loads(json.dumps(to_json(results))), "x").search == search
    old = to_json(results)
    del old["search"]["frames_k"]
    assert results_of(old, "x").search.by_k() == {1: search.arms}


def test_the_k_frame_runs_follow_the_choice_made_at_their_k(runs, tmp_path):
    """The search's recorded runs at k = 2 made to favour the other schedule than k = 1's choice:
    finishing the comparison runs k = 2 with that schedule and k = 1 with its own."""
    out = tmp_path / "report"
    config = dataclasses.replace(CONFIG, frames_k=(2,))
    results = compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    k1 = {arm: results.search.arms[arm].chosen for arm in results.arms}
    other = {arm: next(n for n in results.search.candidates if n != k1[arm]) for arm in results.arms}
    kept = []
    for record in run_log(out):
        if record["context_frames"] == 2 and not record["search"]:
            continue  # as if interrupted before the k = 2 runs
        if record["context_frames"] == 2:
            score = 1.0 if record["search"] == other[record["arm"]] else 0.0
            record["history"] = [{**h, "val_accuracy": score} for h in record["history"]]
        kept.append(json.dumps(record))
    (out / "runs.jsonl").write_text("\n".join(kept) + "\n")
    (out / "results.json").unlink()
    finished = compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    logged = run_log(out)
    for arm in results.arms:
        assert finished.search.frames_k[arm][2].chosen == other[arm]
        assert finished.search.arms[arm].chosen == k1[arm]
        schedules = {k1[arm]: 1, other[arm]: 2}
        for name, k in schedules.items():
            ran = [r for r in logged if r["arm"] == arm and not r["search"] and r["context_frames"] == k]
            assert len(ran) == 2
            assert all(r["schedule"] == schedule(finished.search.candidates[name]) for r in ran)


def test_the_default_space_keeps_its_candidates_and_names():
    config = CompareConfig(search_lrs=(1e-3, 1e-2))
    names = [
        "lr=0.001,unfrozen",
        "lr=0.001,frozen_then_unfrozen",
        "lr=0.01,unfrozen",
        "lr=0.01,frozen_then_unfrozen",
    ]
    candidates = config.candidates()
    assert list(candidates) == names
    assert candidates["lr=0.01,frozen_then_unfrozen"] == dataclasses.replace(
        config.training, lr=1e-2, encoder_lr=1e-3, freeze_epochs=3
    )
    assert candidates["lr=0.001,unfrozen"] == dataclasses.replace(
        config.training, lr=1e-3, encoder_lr=1e-3, freeze_epochs=0
    )


def test_the_wider_space_names_norm_and_epochs_and_derives_freeze_epochs():
    config = CompareConfig(search_lrs=(1e-3,), search_norms=("scaler", "batchnorm"), search_epochs=(2, 12))
    candidates = config.candidates()
    assert len(candidates) == 2 * 2 * 2
    long = candidates["lr=0.001,frozen_then_unfrozen,batchnorm,epochs=12"]
    assert (long.head_norm, long.epochs, long.freeze_epochs) == ("batchnorm", 12, 3)
    short = candidates["lr=0.001,frozen_then_unfrozen,scaler,epochs=2"]
    assert (short.head_norm, short.epochs, short.freeze_epochs) == ("scaler", 2, 1)  # at most epochs - 1
    assert candidates["lr=0.001,unfrozen,batchnorm,epochs=2"].freeze_epochs == 0
    # An explicit freeze_epochs is kept; one above a candidate's epochs is refused up front.
    given = dataclasses.replace(config.training, freeze_epochs=2)
    kept = dataclasses.replace(config, training=given).candidates()[
        "lr=0.001,frozen_then_unfrozen,scaler,epochs=12"
    ]
    assert kept.freeze_epochs == 2
    with pytest.raises(ValueError, match=r"search_epochs 2 is fewer than training\.freeze_epochs"):
        dataclasses.replace(config, training=dataclasses.replace(given, freeze_epochs=5, epochs=10))


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        (
            "search_norms=layernorm",
            "search_norms must each be one of ('scaler', 'batchnorm'), got 'layernorm'",
        ),
        ("search_norms=scaler,scaler", "search_norms lists a value twice"),
        ("search_epochs=0", "search_epochs"),
        ("search_epochs=5,5", "search_epochs lists a value twice"),
        ("training.head_norm=group", "head_norm must be one of"),
    ],
)
def test_a_bad_search_space_is_a_one_line_error(setting, fragment):
    with pytest.raises(UserError, match=r"^[^\n]*$") as err:
        apply_settings(CompareConfig(), [setting])
    assert fragment in str(err.value)


def test_a_bad_search_norm_through_the_cli_is_one_line(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            *(
                "learn",
                "compare",
                str(tmp_path / "data"),
                "--arm",
                str(tmp_path / "run"),
                "--out",
                str(tmp_path / "out"),
            ),
            *("--set", "search_norms=layernorm", "--no-progress"),
        ],
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "search_norms" in lines[0]
    assert not (tmp_path / "out").exists()
