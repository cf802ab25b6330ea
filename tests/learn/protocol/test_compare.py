"""The comparison on a tiny generated dataset: results.json's shape, pairing, the report, the pipeline."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.cli.common import parse_budgets, parse_counts
from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol import pipeline
from airhockey.learn.protocol.arms import resolve_budgets
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.pipeline import MethodChoice, PipelineConfig, run_pipeline
from airhockey.learn.protocol.results import read_results
from airhockey.learn.protocol.summaries import (
    arm_summary,
    convergence_summary,
    curve_area,
    curve_statistic_ci,
    earliest_fraction,
    first_step_reaching,
    most_frames_before_hit,
    paired_difference,
    run_steps,
    steps_to_accuracy,
)
from airhockey.records import to_json
from tests.learn.tiny import DATA, PRETEXT, SCHEDULE, TinyRuns, tiny_runs

runner = CliRunner()
CONFIG = CompareConfig(budgets=(2, None), repeats=2, training=SCHEDULE, hidden=8, practitioner=False)
"""The protocol on two arms (the practitioner's arm: tests/learn/protocol/test_arms.py)."""
PLOTS = ("accuracy_vs_budget.png", "accuracy_by_position.png", "learning_curves.png")
ARMS = ("scratch", "pretext")
"""The arms of the tiny comparison: the reference first, then the pretext run (its folder's name)."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def report(runs: TinyRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "report"
    compare_on_dataset(runs.data, [runs.pretext], out, CONFIG, progress=False)
    return out


def assert_interval(summary: dict, mean_key: str, ci_key: str) -> None:
    lo, hi = summary[ci_key]
    assert lo <= summary[mean_key] <= hi


def test_results_json_has_the_issues_shape(report):
    results = json.loads((report / "results.json").read_text())
    assert {"arms", "budgets", "accuracy_by_position", "convergence"} <= set(results)
    assert results["arms"] == list(ARMS) and results["reference"] == "scratch"
    assert results["arm_details"]["pretext"]["method"] == "next_frame"
    assert [b["labelled_episodes"] for b in results["budgets"]] == [2, 16]
    assert [b["budget"] for b in results["budgets"]] == [2, "all"]
    for budget in results["budgets"]:
        for arm in ARMS:
            summary = budget["arms"][arm]
            assert set(summary) == {"accuracy_mean", "accuracy_ci95", "runs"}
            assert_interval(summary, "accuracy_mean", "accuracy_ci95")
            assert len(summary["runs"]) == 2
            assert all(0.0 <= run["accuracy"] <= 1.0 for run in summary["runs"])
        assert set(budget["paired_difference"]) == {"pretext"}
        assert_interval(budget["paired_difference"]["pretext"], "mean", "ci95")
    position = results["accuracy_by_position"]["budgets"][0]["arms"]["pretext"]
    assert len(position["by_fraction"]["accuracy_mean"]) == 10
    k = position["by_frames_before_hit"]
    assert k["frames_before_hit"][0] == 1 and len(k["accuracy_mean"]) == len(k["frames_before_hit"])
    convergence = results["convergence"]["budgets"][1]["arms"]["scratch"]
    assert convergence["epochs"] == [1, 2] and convergence["encoder_frozen"] == [True, False]
    # 16 episodes' frames exceed min_epoch_frames: one epoch is ceil(train_frames / batch) steps.
    train_frames = results["budgets"][1]["arms"]["scratch"]["runs"][0]["train_frames"]
    per_epoch = -(-max(SCHEDULE.min_epoch_frames, train_frames) // SCHEDULE.batch_size)
    assert convergence["steps"] == [per_epoch, 2 * per_epoch]
    assert results["convergence"]["budgets"][1]["arms"]["pretext"]["steps"] == convergence["steps"]
    assert_interval(convergence["area_under_curve"], "mean", "ci95")
    assert results["convergence"]["accuracy"] == CONFIG.convergence_accuracy
    to_accuracy = convergence["to_accuracy"]
    assert len(to_accuracy["steps"]) == 2 and set(to_accuracy["steps"]) <= {None, per_epoch, 2 * per_epoch}
    reached = [s for s in to_accuracy["steps"] if s is not None]
    assert to_accuracy["reached"]["mean"] == len(reached) / 2
    assert to_accuracy["median_steps"] == (statistics.median(reached) if reached else None)
    for arm in ARMS:
        pos = results["accuracy_by_position"]["budgets"][1]["arms"][arm]
        lo, hi = pos["earliest_fraction_ci95"]
        assert 0.0 <= lo <= hi <= 1.0
    assert len(convergence["val_accuracy_mean"]) == 2 and len(convergence["epochs_to_threshold"]) == 2
    after = results["after_hit"]
    assert after["labelled_episodes"] == 16 and not after["included_by_default"]
    logged = [json.loads(line) for line in (report / "runs.jsonl").read_text().splitlines()]
    assert len(logged) == 3 * 2 * 2  # (2 budgets + the after-hit rerun) x 2 repeats x 2 arms
    for setting in ("excluded", "included"):
        assert 0.0 <= after[setting]["scratch"]["accuracy_after_hit"]["mean"] <= 1.0


def test_the_arms_are_paired_and_share_model_and_schedule(report):
    results = json.loads((report / "results.json").read_text())
    training = results["settings"]["training"]
    assert training["pretrained"] == training["scratch"]
    for budget in results["budgets"]:
        ssl, sup = (budget["arms"][arm]["runs"] for arm in ARMS)
        for a, b in zip(ssl, sup, strict=True):
            assert a["episodes"] == b["episodes"] and a["seed"] == b["seed"]
            assert a["train_frames"] == b["train_frames"]
        seeds = {run["seed"] for run in ssl}
        assert len(seeds) == 2  # the repeats differ
    small, everything = (
        set(r["episodes"])
        for r in (
            results["budgets"][0]["arms"]["pretext"]["runs"][0],
            results["budgets"][1]["arms"]["pretext"]["runs"][0],
        )
    )
    assert small <= everything  # nested budgets


def test_no_test_episode_is_read_by_the_pretext_run_or_any_classifier(report, runs):
    results = json.loads((report / "results.json").read_text())
    test = set(results["data"]["test_episode_ids"])
    recorded = json.loads((runs.pretext / "config.json").read_text())["data"]
    assert test == set(recorded["test_episodes"]) and len(test) == 2
    assert not test & set(recorded["train_episodes"] + recorded["val_episodes"])
    for budget in results["budgets"]:
        for arm in ARMS:
            for run in budget["arms"][arm]["runs"]:
                assert not test & set(run["episodes"])


def test_the_report_embeds_every_plot_and_states_the_numbers(report, runs):
    text = (report / "report.md").read_text()
    for plot in PLOTS:
        assert (report / plot).stat().st_size > 1000
        assert f"]({plot})" in text
    assert "## Conclusions" in text and "points" in text and "frames before the hit" in text
    # An accuracy and its interval carry the unit once: "48.0% [45.6, 50.4]".
    assert re.search(r"\d%\s\[\d+\.\d, \d+\.\d\] \|", text) and "]%" not in text
    with pytest.raises(UserError, match="already holds"):
        compare_on_dataset(runs.data, [runs.pretext], report, CONFIG, progress=False)


def test_budget_parsing_and_checking():
    assert parse_budgets("4, 16,all") == (4, 16, None)
    with pytest.raises(UserError, match="budgets"):
        parse_budgets("4,zero")
    assert resolve_budgets((16, 4, None, 4), 20) == [4, 16, 20]
    with pytest.raises(UserError, match="exceeds the 20 training episodes"):
        resolve_budgets((64,), 20)
    with pytest.raises(ValueError, match="repeats"):
        CompareConfig(repeats=1)
    assert parse_counts("0, 1,2", "--seeds", minimum=0) == (0, 1, 2)  # seeds start at 0
    with pytest.raises(UserError, match="--frames-k takes positive integers"):
        parse_counts("0,2", "--frames-k")


def test_earliest_positions_and_paired_differences_by_hand():
    assert earliest_fraction([0.5, 0.95, 0.8, 0.9, 0.92]) == pytest.approx(0.6)
    assert earliest_fraction([0.95, 0.95]) == 0.0
    assert earliest_fraction([0.95, 0.5]) is None
    assert most_frames_before_hit([0.99, 0.95, 0.7, 0.99]) == 2
    assert most_frames_before_hit([0.5, 0.99]) is None


def test_convergence_by_steps_area_and_steps_to_a_fixed_accuracy_by_hand():
    # Area from step 0 (accuracy taken as the first measurement) to the last step, over the steps.
    assert curve_area([10, 20], [0.5, 1.0]) == pytest.approx((10 * 0.5 + 10 * 0.75) / 20)
    assert curve_area([10, 20, 30], [0.6, 0.6, 0.6]) == pytest.approx(0.6)
    assert math.isnan(curve_area([10, 20], [math.nan, math.nan]))
    assert first_step_reaching([10, 20, 30, 40], [0.5, 0.75, 0.9, 0.8], 0.85) == 30
    assert first_step_reaching([10, 20], [0.4, 0.4], 0.85) is None  # levels off low: not reached
    assert first_step_reaching([10], [math.nan], 0.85) is None
    # Four runs, one never reaching 0.85: counted as not reaching it, left out of the median.
    curves = [[0.5, 0.9, 0.9], [0.9, 0.9, 0.9], [0.4, 0.5, 0.86], [0.8, 0.8, 0.8]]
    to = steps_to_accuracy([[10, 20, 30]] * 4, curves, 0.85)
    assert to is not None and to.steps == (20, 10, 30, None)
    assert to.reached.mean == 0.75 and to.median_steps == 20
    lo, hi = to.median_steps_ci95
    assert 10 <= lo <= 20 <= hi <= 30
    none = steps_to_accuracy([[10, 20]] * 2, [[0.5, 0.6], [0.4, 0.8]], 0.85)
    assert none is not None and none.steps == (None, None) and none.reached.mean == 0.0
    assert none.median_steps is None and none.median_steps_ci95 is None
    assert steps_to_accuracy([[10]] * 2, [[math.nan]] * 2, 0.85) is None  # no validation
    history = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7}]
    # Records without per-epoch steps: ceil(max(min_epoch_frames, train_frames) / batch_size) each.
    assert run_steps({"history": history, "train_frames": 100}, SCHEDULE) == [7, 14]  # 100 / 16
    assert run_steps({"history": history, "train_frames": 10}, SCHEDULE) == [2, 4]  # 32 / 16
    counted = [{**h, "steps": 5 * h["epoch"]} for h in history]
    assert run_steps({"history": counted, "train_frames": 10}, SCHEDULE) == [5, 10]
    runs = [
        {
            "history": [
                {**h, "val_accuracy": a, "elapsed_s": 1.0, "encoder_frozen": False}
                for h, a in zip(counted, accuracy, strict=True)
            ],
            "train_frames": 10,
        }
        for accuracy in ([0.5, 1.0], [0.5, 0.5])
    ]
    summary = convergence_summary(runs, SCHEDULE, 0.85)
    assert summary.steps == (5, 10) and summary.val_accuracy_mean == (0.5, 0.75)
    assert summary.area_under_curve.mean == pytest.approx((0.625 + 0.5) / 2)
    assert summary.to_accuracy is not None and summary.to_accuracy.steps == (10, None)
    assert summary.to_accuracy.median_steps == 10 and summary.to_accuracy.reached.mean == 0.5


def test_the_earliest_positions_interval_resamples_the_runs():
    # Two runs that agree give a degenerate interval at their common answer.
    same = [[0.5, 0.95, 0.95], [0.5, 0.95, 0.95]]
    assert curve_statistic_ci(same, earliest_fraction, 1.0) == [pytest.approx(1 / 3)] * 2
    # One run reaches the threshold from the start, the other never: the interval spans both.
    lo, hi = curve_statistic_ci([[0.95, 0.95], [0.5, 0.5]], earliest_fraction, 1.0)
    assert lo == 0.0 and hi == 1.0
    assert curve_statistic_ci([[0.95, 0.95]], earliest_fraction, 1.0) is None


def run(hits: list[int]) -> dict:
    """A run's record on two test episodes of 10 scored frames each."""
    return {"accuracy": sum(hits) / 20, "episode_hits": hits, "episode_frames": [10, 10]}


def test_paired_differences_and_arm_summaries_by_hand():
    diff = paired_difference([run([9, 9]), run([8, 8])], [run([7, 7]), run([8, 8])])
    assert diff.mean == pytest.approx(0.1) and diff.wins == 1 and diff.ties == 1
    assert diff.per_repeat == pytest.approx([0.2, 0.0])
    lo, hi = diff.ci95
    assert 0.0 <= lo <= 0.1 <= hi <= 0.2  # resampled repeats: from both ties to both wins
    runs = [run([10, 10]), run([10, 9])]
    summary = arm_summary(runs)
    assert summary.accuracy_mean == pytest.approx(0.975) and summary.accuracy_ci95[1] == 1.0
    assert summary.runs == tuple(runs)  # kept, so that the interval can be recomputed
    assert "runs" not in to_json(dataclasses.replace(summary, runs=None))  # as older files hold it


def tiny_pipeline() -> PipelineConfig:
    settings = ("encoder.stem_channels=8", "encoder.hidden_channels=4", "frames_in=3", "clip_stride=8")
    return PipelineConfig(
        DATA,
        PRETEXT,
        MethodChoice("next_frame", settings),
        dataclasses.replace(CONFIG, after_hit_effect=False),
    )


def test_the_pipeline_runs_end_to_end_and_reuses_finished_stages(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "QUICK", tiny_pipeline())
    out = tmp_path / "pipe"
    args = ["pipeline", str(out), "--quick", "--policy", "scripted", "--workers", "1", "--threads", "1"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "labelled episodes: " in result.output and "points, 95% interval" in result.output
    for path in (
        "data/manifest.json",
        "pretext/best.pt",
        "report/results.json",
        "report/report.md",
        "pipeline.json",
    ):
        assert (out / path).is_file(), path
    assert all((out / "report" / plot).is_file() for plot in PLOTS)
    record = json.loads((out / "pipeline.json").read_text())
    assert set(record["seconds"]) == {"generate", "pretext", "compare"}

    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0 and "reusing" in result.output
    result = runner.invoke(app, [*args, "--seed", "1", "--no-progress"])
    assert result.exit_code == 2 and "other settings" in result.stderr


def test_run_pipeline_with_other_settings_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "pipe"
    out.mkdir()
    (out / "pipeline.json").write_text(json.dumps({"config": {"data": {}}, "command": "", "seconds": {}}))
    with pytest.raises(UserError, match="other settings"):
        run_pipeline(out, tiny_pipeline(), progress=False, say=lambda line: None)


def compare_args(runs, out: Path, budgets: str) -> list[str]:
    return [
        "learn",
        "compare",
        str(runs.data),
        "--arm",
        str(runs.pretext),
        "--out",
        str(out),
        "--budgets",
        budgets,
    ]


def test_compare_through_the_cli_and_its_one_line_errors(runs, tmp_path):
    out = tmp_path / "report"
    common = ["--set", "training.epochs=2", "--set", "training.freeze_epochs=1"]
    common += ["--set", "training.frame_stride=4", "--set", "training.min_epoch_frames=32"]
    common += ["--threads", "1", "--no-progress", "--repeats", "2", "--set", "after_hit_effect=false"]
    result = runner.invoke(
        app, [*compare_args(runs, out, "2,all"), "--set", "scratch_schedule=unfrozen", *common]
    )
    assert result.exit_code == 0, result.output
    assert "labelled episodes: " in result.output
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["training"]["scratch"]["freeze_epochs"] == 0
    assert results["settings"]["training"]["pretrained"]["freeze_epochs"] == 1
    assert results["after_hit"] is None
    for budgets, fragment in (("2,99", "exceeds"), ("two", "budgets")):
        result = runner.invoke(app, [*compare_args(runs, tmp_path / "x", budgets), *common])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_an_interrupted_comparison_is_finished_by_running_it_again(runs, tmp_path):
    config = dataclasses.replace(CONFIG, budgets=(2,), after_hit_effect=False)
    whole = compare_on_dataset(runs.data, [runs.pretext], tmp_path / "whole", config, progress=False)
    out = tmp_path / "cut"
    compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    # As if killed after two runs, in the middle of writing the third one's line.
    lines = (out / "runs.jsonl").read_text().splitlines()
    first = {**json.loads(lines[0]), "train_seconds": 12345.0}  # marks a run that must be reused
    (out / "runs.jsonl").write_text("\n".join([json.dumps(first), lines[1]]) + "\n" + lines[2][:40])
    (out / "results.json").unlink()
    finished = compare_on_dataset(runs.data, [runs.pretext], out, config, progress=False)
    reused = [r for b in finished.budgets for a in ARMS for r in b.arms[a].runs]
    assert sum(r["train_seconds"] == 12345.0 for r in reused) == 1
    for arm in ARMS:
        accuracies = [[r["accuracy"] for r in b.arms[arm].runs] for b in (whole, finished) for b in b.budgets]
        assert accuracies[0] == accuracies[1]
    with pytest.raises(UserError, match="other settings"):
        (out / "results.json").unlink()
        compare_on_dataset(
            runs.data, [runs.pretext], out, dataclasses.replace(config, seed=1), progress=False
        )


def test_every_arm_runs_the_same_search_and_then_its_choice(runs, tmp_path):
    config = dataclasses.replace(
        CONFIG, budgets=(2,), after_hit_effect=False, search_lrs=(1e-3, 1e-2), search_budget=8, search_draws=1
    )
    compare_on_dataset(runs.data, [runs.pretext], tmp_path / "report", config, progress=False)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    search = results["search"]
    names = [
        "lr=0.001,unfrozen",
        "lr=0.001,frozen_then_unfrozen",
        "lr=0.01,unfrozen",
        "lr=0.01,frozen_then_unfrozen",
    ]
    assert list(search["candidates"]) == names and search["budget"] == 8
    assert search["candidates"]["lr=0.01,frozen_then_unfrozen"]["encoder_lr"] == pytest.approx(1e-3)
    logged = [json.loads(line) for line in (tmp_path / "report" / "runs.jsonl").read_text().splitlines()]
    searched = [r for r in logged if r["search"]]
    assert len(searched) == 2 * len(names)  # every arm, every candidate, one draw
    assert not any("accuracy" in r or "test_frames" in r for r in searched)  # read by validation alone
    assert all("accuracy" in r for r in logged if not r["search"])
    for arm in ARMS:
        row = search["arms"][arm]
        assert row["chosen"] == max(names, key=lambda n: row["mean_best_val_accuracy"][n])
        chosen = search["candidates"][row["chosen"]]
        for run in results["budgets"][0]["arms"][arm]["runs"]:
            assert (
                run["schedule"]["lr"] == chosen["lr"]
                and run["schedule"]["freeze_epochs"] == chosen["freeze_epochs"]
            )
    # The search's validation episodes are part of its budget of 8, and never test episodes.
    for r in searched:
        assert len(r["episodes"]) + len(r["val_episodes"]) == 8 and not set(r["val_episodes"]) & set(
            r["episodes"]
        )
        assert not set(r["val_episodes"]) & set(results["data"]["test_episode_ids"])
    # The oracle's head (no encoder) gets the same learning rates on the same draws.
    head = search["oracle_head"]
    assert set(head["mean_val_accuracy"]) == {"0.001", "0.01"}
    assert head["chosen"] == float(
        max(head["mean_val_accuracy"], key=lambda lr: head["mean_val_accuracy"][lr])
    )
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## The hyperparameter search" in text and f"runs at lr={head['chosen']:g}" in text


def test_the_k_frame_runs_use_the_budget_chosen_for_them(runs, tmp_path):
    with pytest.raises(ValueError, match="frames_k_budget must be one of the budgets"):
        CompareConfig(budgets=(2, None), frames_k=(2,), frames_k_budget=4)
    config = dataclasses.replace(
        CONFIG, frames_k=(2,), frames_k_budget=2, after_hit_effect=False, probes=False, oracle=False
    )
    compare_on_dataset(runs.data, [runs.pretext], tmp_path / "k", config, progress=False)
    results = json.loads((tmp_path / "k" / "results.json").read_text())
    assert results["frames_k_budget"] == 2
    logged = [json.loads(line) for line in (tmp_path / "k" / "runs.jsonl").read_text().splitlines()]
    k2 = [r for r in logged if r["context_frames"] == 2]
    assert len(k2) == 2 * len(results["arms"]) and {r["labelled_episodes"] for r in k2} == {2}
    by_arm = {arm: {r["repeat"]: r["accuracy"] for r in k2 if r["arm"] == arm} for arm in ARMS}
    [at_2] = results["by_k"]
    assert (at_2["labelled_episodes"], at_2["context_frames"]) == (2, 2)
    difference = at_2["paired_difference"]["pretext"]  # paired draw by draw with scratch
    assert difference["per_repeat"] == pytest.approx(
        [by_arm["pretext"][i] - by_arm["scratch"][i] for i in sorted(by_arm["scratch"])]
    )
    assert "| pretext minus scratch (points) |" in (tmp_path / "k" / "report.md").read_text()
    typed = read_results(tmp_path / "k")
    assert typed.frames_k is not None
    assert typed.frames_k["pretext"][1] == typed.budgets[0].arms["pretext"]
    assert (
        "At 2 labelled episodes, the classifier reading the k" in (tmp_path / "k" / "report.md").read_text()
    )
    # A finished comparison re-run with one more k adds that k's runs and reuses every other run.
    compare_on_dataset(
        runs.data,
        [runs.pretext],
        tmp_path / "k",
        dataclasses.replace(config, frames_k=(2, 3)),
        progress=False,
    )
    more = json.loads((tmp_path / "k" / "results.json").read_text())
    extended = [json.loads(line) for line in (tmp_path / "k" / "runs.jsonl").read_text().splitlines()]
    assert extended[: len(logged)] == logged
    assert [r["context_frames"] for r in extended[len(logged) :]] == [3] * (2 * len(results["arms"]))
    assert [(b["labelled_episodes"], b["context_frames"]) for b in more["by_k"]] == [(2, 2), (2, 3)]
    assert more["by_k"][0] == results["by_k"][0]
    with pytest.raises(UserError, match=r"already holds results\.json of this comparison"):
        compare_on_dataset(
            runs.data,
            [runs.pretext],
            tmp_path / "k",
            dataclasses.replace(config, frames_k=(2, 3)),
            progress=False,
        )
