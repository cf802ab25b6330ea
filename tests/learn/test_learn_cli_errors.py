"""Every invalid option of the learn commands: one line `error: ...`, exit 2, and nothing written."""

from __future__ import annotations

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
        ([*cmp, "--set", "validation=test"], "validation must be one of"),
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
        (["pipeline", str(out), "--set", "frames_in=0"], "frames_in must be at least 1"),
    ]


def test_each_invalid_learn_option_is_one_line_and_writes_nothing(runs, tmp_path):
    out = tmp_path / "out"
    for args, fragment in cases(runs, out):
        result = runner.invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, lines)
        assert not out.exists() and not Path(str(out) + ".avi").exists(), args
