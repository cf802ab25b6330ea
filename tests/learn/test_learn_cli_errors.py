"""Every invalid option of the learn commands: one line `error: ...`, exit 2, and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from tests.learn.tiny import TinyRuns, tiny_runs

runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def cases(runs: TinyRuns, out: Path) -> list[tuple[list[str], str]]:
    data, pretext = str(runs.data), str(runs.pretext)
    missing = str(out.parent / "missing")
    pre = ["learn", "pretext", data, "--out", str(out), "--no-progress"]
    cls = ["learn", "classify", data, "--out", str(out), "--no-progress"]
    cmp = ["learn", "compare", data, "--out", str(out), "--arm", pretext, "--no-progress"]
    return [
        ([*pre, "--method", "nope"], "unknown method 'nope'"),
        ([*pre, "--set", "frames_in=x"], "frames_in must be an integer"),
        ([*pre, "--set", "bogus=1"], "unknown setting 'bogus'"),
        ([*pre, "--device", "tpu0"], "unknown device"),
        ([*pre, "--resume"], "no run to resume"),
        (["learn", "pretext", missing, "--out", str(out)], "missing"),
        ([*cls], "give --pretext RUN"),
        ([*cls, "--pretext", missing], "no checkpoint"),
        ([*cls, "--scratch", "--labelled-episodes", "999"], "labelled episodes must be in"),
        ([*cls, "--scratch", "--freeze-epochs", "20"], "freeze_epochs must be in"),
        ([*cmp, "--budgets", "4,x"], "budgets must be positive integers"),
        ([*cmp, "--budgets", "999"], "exceeds the 16 training episodes"),
        ([*cmp, "--reference", "other"], "reference arm 'other'"),
        ([*cmp, "--set", "scratch_schedule=warm"], "scratch_schedule must be one of"),
        ([*cmp, "--set", "validation=bogus"], "validation must be one of"),
        ([*cmp, "--set", "validation=test"], "would choose on the test episodes"),
        ([*cmp, "--set", "training.epochs=x"], "training.epochs must be an integer"),
        ([*cmp, "--set", "bogus=1"], "unknown setting 'bogus' of CompareConfig"),
        ([*cmp, "--set", "frames_k_budget=5"], "frames_k_budget must be one of the budgets"),
        ([*cmp, "--frames-k", "2,zero"], "--frames-k takes positive integers"),
        ([*cmp, "--test-data", data], "shares"),
        ([*cmp, "--backend", "cloud"], "backend must be one of"),
        (["learn", "compare", data, "--out", str(out)], "give at least one --arm"),
        (["learn", "predict", missing, "--data", data], "no checkpoint"),
        (["learn", "predict", pretext, "--data", data, "--out", str(out) + ".avi"], ".mp4 or .gif"),
        (["learn", "methods", "nope"], "unknown method"),
        (["learn", "benchmark", str(out), "--quick", "--full"], "choose one of --quick and --full"),
        (["learn", "benchmark", str(out), "--methods", "nope"], "unknown method 'nope'"),
        (["learn", "benchmark", str(out), "--scratch-schedule", "warm"], "scratch_schedule must be one of"),
        (["pipeline", str(out), "--method", "nope"], "unknown method"),
        (["pipeline", str(out), "--set", "frames_in=0"], "frames_in must be an integer in [1, 1024]"),
        # checked up front, before any data are generated or any run trains
        (
            ["learn", "benchmark", str(out), "--quick", "--budgets", "1,500"],
            "exceeds the at most 44 training",
        ),
        (["learn", "benchmark", str(out), "--quick", "--budgets", "1,45", "--labels", "both"], "at most 44"),
        (["learn", "benchmark", str(out), "--quick", "--device", "tpu0"], "unknown device"),
        (["pipeline", str(out), "--quick", "--policy", missing], "cannot load policy"),
        (["pipeline", str(out), "--quick", "--device", "tpu0"], "unknown device"),
        (
            ["pipeline", str(out), "--quick", "--set", "encoder.stem_channels=8,8,8,8,8,8"],
            "cannot read 32x32",
        ),
        ([*cmp, "--backend", "ray", "--ray-address", "localhost:99999"], "PORT in 1-65535"),
        ([*cls, "--scratch", "--epochs", "2", "--freeze-epochs", "3"], "freeze_epochs must be in 0-2"),
        ([*pre, "--set", "encoder.image_size="], "takes 2 values"),
        ([*cmp, "--set", "budgets="], "budgets must be positive"),
        ([*pre, "--batch-size", "x"], "Invalid value for '--batch-size'"),
    ]


def test_each_invalid_learn_option_is_one_line_and_writes_nothing(runs, tmp_path):
    out = tmp_path / "out"
    for args, fragment in cases(runs, out):
        result = runner.invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, lines)
        assert not out.exists() and not Path(str(out) + ".avi").exists(), args


def test_a_cuda_device_on_a_machine_without_one_is_refused_before_anything_is_written(runs, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "out"
    for args in (
        ["learn", "benchmark", str(out), "--quick", "--device", "cuda"],
        ["pipeline", str(out), "--quick", "--device", "cuda"],
        ["agent", "train", "--out", str(out), "--device", "cuda", "--timesteps", "10"],
        ["learn", "pretext", str(runs.data), "--out", str(out), "--device", "cuda"],
    ):
        result = runner.invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1 and "no CUDA GPU" in lines[0], (args, lines)
        assert not out.exists(), args


def test_classify_with_fewer_epochs_than_the_default_frozen_ones_fine_tunes_in_its_last(runs, tmp_path):
    out = tmp_path / "one-epoch"
    args = ["learn", "classify", str(runs.data), "--out", str(out), "--scratch", "--epochs", "1"]
    small = ["--min-epoch-frames", "32", "--batch-size", "16", "--frame-stride", "4", "--no-progress"]
    result = runner.invoke(app, [*args, *small])
    assert result.exit_code == 0, result.output
    schedule = json.loads((out / "config.json").read_text())
    assert '"freeze_epochs": 0' in json.dumps(schedule), schedule
