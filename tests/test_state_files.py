"""Damaged state files: each is refused in one line naming the file (and the field), through the public
entry point that reads it, never a traceback and never accepted."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airhockey.agents.training import train
from airhockey.errors import UserError
from airhockey.generate.shards import open_shards
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.protocol.benchmark import Sessions
from airhockey.learn.protocol.pipeline import FULL, run_pipeline
from tests.learn.tiny import tiny_runs


@dataclass(frozen=True)
class Kind:
    """A state file: where it lies in a copy of a valid folder, a field to damage, how it is read."""

    file: str
    field: str
    read: Callable[[Path], Any]
    """Opens the folder through the public entry point that reads the file."""


def _agent_run(root: Path) -> Path:
    """A resumable agent run folder, built by hand: its ``config.json`` and checkpoint state."""
    out = root / "agent"
    (out / "checkpoint").mkdir(parents=True)
    config = {"out": str(out), "seed": 0}
    (out / "config.json").write_text(json.dumps({"env_id": "AirHockey-v0", "versions": {}, "config": config}))
    (out / "checkpoint" / "state.json").write_text(json.dumps({"timesteps": 64, "wall_seconds": 1.5}))
    return out


def _benchmark(root: Path) -> Path:
    settings = {"compare": {"budgets": [1]}, "methods": ["next_frame"]}
    Sessions.open(root / "benchmark.json", settings, "airhockey learn benchmark").write()
    return root


def _pipeline(root: Path) -> Path:
    record = {"config": FULL.to_dict(), "command": "airhockey learn pipeline", "seconds": {}}
    (root / "pipeline.json").write_text(json.dumps(record))
    return root


def _train_agent(out: Path) -> None:
    from airhockey.agents.config import TrainConfig

    train(TrainConfig(out=out, resume=True, timesteps=128))


KINDS = {
    "pretext metrics.json": Kind("metrics.json", "steps", PretextRun.open),
    "pretext config.json": Kind("config.json", "method_config", PretextRun.open),
    "dataset manifest.json": Kind("manifest.json", "episodes", open_shards),
    "benchmark.json": Kind(
        "benchmark.json", "settings", lambda d: Sessions.open(d / "benchmark.json", {}, "")
    ),
    "pipeline.json": Kind("pipeline.json", "config", lambda d: run_pipeline(d, FULL)),
    "agent config.json": Kind("config.json", "config", _train_agent),
    "agent checkpoint state.json": Kind("checkpoint/state.json", "timesteps", _train_agent),
}


def _damage(text: str, how: str, field: str) -> str:
    """``text`` (a JSON object) damaged as ``how`` says."""
    data = json.loads(text)
    if how == "not JSON":
        return text[: len(text) // 2]
    if how == "missing field":
        del data[field]
    elif how == "wrong type":
        data[field] = "a string" if not isinstance(data[field], str) else 12
    elif how == "unknown field":
        data["surprise"] = "a string"
    elif how == "list, not an object":
        data = [data]
    elif how == "NaN":
        data[field] = math.nan
    return json.dumps(data)  # NaN is written as the non-standard literal NaN


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid folder per kind of state file."""
    runs = tiny_runs(tmp_path_factory)
    root = tmp_path_factory.mktemp("state-files")
    for name in ("benchmark", "pipeline"):
        (root / name).mkdir()
    return {
        "pretext metrics.json": runs.pretext,
        "pretext config.json": runs.pretext,
        "dataset manifest.json": runs.data,
        "benchmark.json": _benchmark(root / "benchmark"),
        "pipeline.json": _pipeline(root / "pipeline"),
        "agent config.json": _agent_run(root),
        "agent checkpoint state.json": _agent_run(root / "second"),
    }


@pytest.mark.parametrize(
    "how", ["not JSON", "missing field", "wrong type", "unknown field", "list, not an object", "NaN"]
)
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_state_file_is_refused_in_one_line_naming_file_and_field(
    folders: dict[str, Path], tmp_path: Path, kind: str, how: str
) -> None:
    spec = KINDS[kind]
    folder = tmp_path / "copy"
    shutil.copytree(folders[kind], folder)
    path = folder / spec.file
    path.write_text(_damage(path.read_text(), how, spec.field))
    with pytest.raises(UserError) as caught:
        spec.read(folder)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    if how in ("missing field", "wrong type"):
        assert repr(spec.field) in message
    if how == "unknown field":
        assert "'surprise'" in message


@pytest.mark.parametrize("kind", ["pretext metrics.json", "pretext config.json", "dataset manifest.json"])
def test_the_undamaged_folders_open(folders: dict[str, Path], kind: str) -> None:
    KINDS[kind].read(folders[kind])  # the damage above is what each refusal is about
