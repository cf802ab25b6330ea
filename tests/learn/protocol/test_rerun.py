"""A comparison's runs run again from its report folder: the same record from the same settings, a
changed setting applied to the same episodes, and a folder that cannot be rerun refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from airhockey.errors import UserError
from airhockey.jsonio import json_safe
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.rerun import StoredComparison
from airhockey.learn.protocol.runlog import FINGERPRINTS, SETTINGS_FILE
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

CONFIG = CompareConfig(
    budgets=(4,),
    repeats=2,
    training=SCHEDULE,
    hidden=8,
    frames_k=(2,),
    oracle=False,
    after_hit_effect=False,
    probes=False,
    practitioner=False,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def report(runs: TinyRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rerun") / "report"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests run: a kernel's sums may fall otherwise on more threads
    try:
        compare_on_dataset(runs.data, [runs.pretext], out, CONFIG, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def without_times(record: dict) -> dict:
    """The record as stored (NaN as null), without its timings and what the run log adds."""
    record = json.loads(json.dumps(json_safe(record)))
    out = {k: v for k, v in record.items() if k not in ("seconds", "train_seconds", *FINGERPRINTS)}
    out["history"] = [{**row, "elapsed_s": 0} for row in record["history"]]
    return out


def test_every_stored_run_is_made_again_from_its_record(report):
    stored = StoredComparison.open(report)
    tested = stored.tested()
    assert {(r["arm"], r["context_frames"]) for r in tested} == {
        (arm, k) for arm in ("scratch", "pretext") for k in (1, 2)
    }
    for record in tested:
        assert without_times(stored.run(record)) == without_times(record), (record["arm"], record["repeat"])


def test_a_changed_setting_trains_the_same_episodes_differently(report):
    stored = StoredComparison.open(report)
    record = next(r for r in stored.tested() if r["arm"] == "pretext" and r["context_frames"] == 2)
    job = stored.job(record, lr=record["schedule"]["lr"] * 10)
    assert job.training.lr == record["schedule"]["lr"] * 10 and job.training.context_frames == 2
    again = stored.run(record, lr=record["schedule"]["lr"] * 10)
    assert again["episodes"] == record["episodes"] and again["val_episodes"] == record["val_episodes"]
    assert again["history"][-1]["train_loss"] != record["history"][-1]["train_loss"]


def test_a_folder_that_cannot_be_rerun_is_refused_naming_the_file(report, tmp_path):
    with pytest.raises(UserError, match=r"holds no compare\.json"):
        StoredComparison.open(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(report, copy)
    settings = json.loads((copy / SETTINGS_FILE).read_text())
    (copy / SETTINGS_FILE).write_text(json.dumps({**settings, "data_fingerprint": "0" * 64}))
    with pytest.raises(UserError, match="the data changed since the comparison ran"):
        StoredComparison.open(copy)
    del settings["arms"]
    (copy / SETTINGS_FILE).write_text(json.dumps(settings))
    with pytest.raises(UserError, match=r"compare.json: field 'arms' is missing or damaged"):
        StoredComparison.open(copy)
