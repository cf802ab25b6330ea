"""What a comparison refuses to reuse or record: runs of data regenerated or of a pretext run
retrained since, a diverged classifier, a report folder inside the data."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from airhockey.errors import UserError
from airhockey.generate import generate
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.compare import compare_on_dataset
from tests.learn.tiny import DATA, SCHEDULE, TinyRuns, tiny_runs

CONFIG = CompareConfig(
    budgets=(2,), repeats=2, training=SCHEDULE, hidden=8, after_hit_effect=False, oracle=False, probes=False
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def interrupted(data, arms, out) -> None:
    """A comparison in ``out`` cut short after its first run."""
    compare_on_dataset(data, arms, out, CONFIG, progress=False)
    lines = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text(lines[0] + "\n")
    (out / "results.json").unlink()


def test_runs_of_a_pretext_run_retrained_since_are_not_reused(runs, tmp_path):
    pretext = tmp_path / "pretext"
    shutil.copytree(runs.pretext, pretext)
    interrupted(runs.data, [pretext], tmp_path / "report")
    record = json.loads((tmp_path / "report" / "runs.jsonl").read_text().splitlines()[0])
    assert record["data_fingerprint"] and ("pretext_sha256" in record)
    ckpt = torch.load(pretext / "best.pt", weights_only=True)  # retrained: same step, other weights
    ckpt["encoder"] = {k: v + 1e-3 if v.is_floating_point() else v for k, v in ckpt["encoder"].items()}
    torch.save(ckpt, pretext / "best.pt")
    with pytest.raises(UserError, match="retrained since"):
        compare_on_dataset(runs.data, [pretext], tmp_path / "report", CONFIG, progress=False)


def test_a_run_record_of_another_checkpoint_is_refused(runs, tmp_path):
    out = tmp_path / "report"
    interrupted(runs.data, [runs.pretext], out)
    record = json.loads((out / "runs.jsonl").read_text().splitlines()[0])
    (out / "runs.jsonl").write_text(json.dumps({**record, "data_fingerprint": "0" * 64}) + "\n")
    with pytest.raises(UserError, match=r"runs\.jsonl: the run of arm .* trained on other data") as excinfo:
        compare_on_dataset(runs.data, [runs.pretext], out, CONFIG, progress=False)
    assert "\n" not in str(excinfo.value)


def test_runs_of_data_regenerated_since_are_not_reused(tmp_path):
    data = tmp_path / "data"
    generate(DATA, data, workers=1, progress=False)
    interrupted(data, ["scratch"], tmp_path / "report")
    shutil.rmtree(data)
    generate(dataclasses.replace(DATA, seed=3), data, workers=1, progress=False)
    with pytest.raises(UserError, match="other data"):
        compare_on_dataset(data, ["scratch"], tmp_path / "report", CONFIG, progress=False)


def test_a_diverged_classifier_is_an_error_of_its_arm_not_a_result(runs, tmp_path):
    pretext = tmp_path / "diverged"
    shutil.copytree(runs.pretext, pretext)
    ckpt = torch.load(pretext / "best.pt", weights_only=True)  # a run that diverged, saved unchecked
    ckpt["encoder"] = {k: torch.full_like(v, float("nan")) for k, v in ckpt["encoder"].items()}
    torch.save(ckpt, pretext / "best.pt")
    out = tmp_path / "report"
    with pytest.raises(UserError, match=r"arm 'diverged', budget 2, draw \d, k = 1: training diverged"):
        compare_on_dataset(runs.data, [pretext], out, CONFIG, progress=False)
    assert not (out / "results.json").exists()
    recorded = [json.loads(line)["arm"] for line in (out / "runs.jsonl").read_text().splitlines()]
    assert "diverged" not in recorded


def test_a_report_folder_in_the_data_is_refused(runs):
    for out in (runs.data, runs.data / "report"):
        with pytest.raises(UserError, match="dataset"):
            compare_on_dataset(runs.data, ["scratch"], out, CONFIG, progress=False)
    assert not (runs.data / "report").exists()
