"""Fuzzing the learn stage's inputs: damaged run folders and random ``--set`` values.

Run folders: each trial damages a copy of a tiny finished pretext run one way (flipped bytes, a
truncated, emptied or deleted file, a JSON field deleted or given a value of another type, a
checkpoint's field changed, checkpoints swapped) and opens it as every later stage does
(``PretextRun.open`` and its encoder). Settings: each case gives one to three ``key=value``
settings, random keys of a random config (a method's or the comparison's) with random values
(text, NaN, inf, huge and negative numbers, empty values, tuples, values of another type), to
``apply_settings`` and to ``airhockey learn pretext --set``.

A trial passes when the reader succeeds (with finite numbers in any config it accepts) or stops
with a one-line ``UserError`` (from the CLI: exit 2, one ``error:`` line, nothing written). An
uncaught exception, a traceback or a trial over its time limit fails.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate.config import ShapesConfig
from airhockey.generate.shapes import generate_shapes
from airhockey.learn.config import CompareConfig, EncoderConfig, PretextConfig, apply_settings, field_names
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.methods.next_frame import NextFrame, NextFrameConfig
from airhockey.learn.pretext.run import PretextRun
from airhockey.learn.pretext.trainer import train_pretext

RUN_TRIALS = 120
SETTING_TRIALS = 300
CLI_TRIALS = 40
SECONDS_PER_TRIAL = 20  # a hang, not a slow read: a trial takes well under a second
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    def fail(signum: int, frame: object) -> None:
        raise TimeoutError("a reader hung on a fuzzed input")

    previous = signal.signal(signal.SIGALRM, fail)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished pretext run (best.pt, last.pt, config.json, metrics.json, log.csv) in seconds."""
    root = tmp_path_factory.mktemp("fuzz-run")
    shapes = ShapesConfig(episodes=20, length=8, width=16, height=16, radius=(2.0, 3.0))
    generate_shapes(shapes, root / "data")
    model = NextFrameConfig(
        encoder=EncoderConfig(stem_channels=(4,), hidden_channels=4), frames_in=3, clip_stride=8
    )
    train_pretext(
        root / "data", root / "run", NextFrame(model), PretextConfig(epochs=1, batch_size=8), progress=False
    )
    return root / "run"


def _odd_value(rng: np.random.Generator) -> Any:
    """A JSON value of a random kind: what a hand edit or damage could leave in a field."""
    pool: list[Any] = [
        None,
        "",
        "x" * int(rng.integers(1, 200)),
        -1,
        0,
        2**70,
        -(2**70),
        1e308,
        float("nan"),
        float("inf"),
        True,
        [],
        [1, "a", None],
        {},
        {"nested": {"deeper": [1.5]}},
        1.5,
    ]
    return pool[int(rng.integers(len(pool)))]


def _mutate_json(value: Any, rng: np.random.Generator) -> Any:
    """``value`` with one field (at a random depth) deleted or replaced by ``_odd_value``."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = list(value)[int(rng.integers(len(value)))]
        if rng.random() < 0.3:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _mutate_json(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = int(rng.integers(len(value)))
        return [*value[:i], _mutate_json(value[i], rng), *value[i + 1 :]]
    return _odd_value(rng)


def _json_field(folder: Path, rng: np.random.Generator) -> None:
    path = folder / str(rng.choice(["config.json", "metrics.json"]))
    path.write_text(json.dumps(_mutate_json(json.loads(path.read_text()), rng)))


def _checkpoint_field(folder: Path, rng: np.random.Generator) -> None:
    path = folder / str(rng.choice(["best.pt", "last.pt"]))
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    key = str(rng.choice(sorted(k for k in ckpt if k not in ("model", "encoder", "optimizer"))))
    ckpt[key] = _mutate_json(ckpt[key], rng)
    torch.save(ckpt, path)


def _flip(folder: Path, rng: np.random.Generator) -> None:
    path = _any_file(folder, rng)
    raw = bytearray(path.read_bytes())
    for _ in range(int(rng.integers(1, 9))):
        raw[int(rng.integers(len(raw)))] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(raw))


def _truncate(folder: Path, rng: np.random.Generator) -> None:
    path = _any_file(folder, rng)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(rng.integers(len(raw)))])


def _empty(folder: Path, rng: np.random.Generator) -> None:
    _any_file(folder, rng).write_bytes(b"")


def _delete(folder: Path, rng: np.random.Generator) -> None:
    _any_file(folder, rng).unlink()


def _swap_checkpoints(folder: Path, rng: np.random.Generator) -> None:
    (folder / "best.pt").rename(folder / "swap")
    (folder / "last.pt").rename(folder / "best.pt")
    (folder / "swap").rename(folder / "last.pt")


def _any_file(folder: Path, rng: np.random.Generator) -> Path:
    """One of the files the run wrote (the empty lock file holds nothing to damage)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.stat().st_size)
    return files[int(rng.integers(len(files)))]


RUN_DAMAGES: dict[str, Callable[[Path, np.random.Generator], None]] = {
    "json field": _json_field,
    "checkpoint field": _checkpoint_field,
    "flip": _flip,
    "truncate": _truncate,
    "empty": _empty,
    "delete": _delete,
    "swap checkpoints": _swap_checkpoints,
}
RUN_WEIGHTS = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.05])


def _assert_finite(config: Any, where: str) -> None:
    """Every number of a config dataclass (nested ones and tuples too) is finite."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if dataclasses.is_dataclass(v):
                _assert_finite(v, where)
            elif isinstance(v, float):
                assert math.isfinite(v), f"{where}: {f.name} = {v} accepted"


def _one_line(err: UserError) -> str:
    message = str(err)
    assert message and "\n" not in message, message
    return message


def test_damaged_run_folders_open_or_give_one_line_errors(tiny_run, tmp_path):
    rng = np.random.default_rng(31)
    outcomes: dict[str, int] = {}
    failures = []
    for trial in range(RUN_TRIALS):
        folder = tmp_path / f"trial{trial}"
        shutil.copytree(tiny_run, folder)
        damage = str(rng.choice(list(RUN_DAMAGES), p=RUN_WEIGHTS))
        RUN_DAMAGES[damage](folder, rng)
        signal.alarm(SECONDS_PER_TRIAL)
        try:
            run = PretextRun.open(folder)
            run.encoder()
            _assert_finite(run.training, f"trial {trial} ({damage})")
            outcome = "opened"
        except UserError as err:
            outcome = "user error" if "\n" not in str(err) else "a message of several lines"
        except Exception as err:
            outcome = f"{type(err).__name__}: {err}".splitlines()[0]
        finally:
            signal.alarm(0)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome not in ("opened", "user error"):
            failures.append(f"trial {trial} ({damage}): {outcome}")
        shutil.rmtree(folder)
    assert not failures, "\n".join(failures)
    assert outcomes.get("user error", 0) > RUN_TRIALS // 4, outcomes  # the damage is mostly found


SPECIAL_VALUES = (
    "nan", "NaN", "inf", "-inf", "+inf", "1e308", "1e309", "-1e309", "1" + "0" * 40, "-1", "-100000",
    "0", "100000", "0.5", "-0.0", "", " ", "()", "[]", "(,)", ",", "1,2,3", "-1,-1", "nan,nan", "true",
    "false", "none", "None", "null", "x", "ß∂ƒ", "1_000", "0x10", "1e-320", "=", "a=b", "'1'",
)  # fmt: skip


def _random_text(rng: np.random.Generator) -> str:
    alphabet = [*"abcxyz0123456789.,-+e()[] =_'\"\\/", "é", "\t", "∞"]
    return "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))


def _random_setting(names: list[str], rng: np.random.Generator) -> str:
    roll = rng.random()
    key = (
        names[int(rng.integers(len(names)))] if roll < 0.9 else str(rng.choice(["nope", "encoder.nope", ""]))
    )
    value = str(rng.choice(SPECIAL_VALUES)) if rng.random() < 0.7 else _random_text(rng)
    return key if rng.random() < 0.03 else f"{key}={value}"  # now and then no '='


def _configs() -> list[Any]:
    return [*(get_method(name).config_class() for name in method_names()), CompareConfig()]


def test_random_set_values_give_a_config_with_finite_numbers_or_one_line_errors():
    rng = np.random.default_rng(31)
    configs = _configs()
    accepted = 0
    failures = []
    for case in range(SETTING_TRIALS):
        config = configs[int(rng.integers(len(configs)))]
        names = field_names(type(config))
        settings = [_random_setting(names, rng) for _ in range(int(rng.integers(1, 4)))]
        where = f"case {case}: {type(config).__name__} {settings}"
        signal.alarm(SECONDS_PER_TRIAL)
        try:
            result = apply_settings(config, settings)
            assert type(result) is type(config)
            _assert_finite(result, where)
            accepted += 1
        except UserError as err:
            if "\n" in str(err):
                failures.append(f"{where}: a message of several lines")
        except Exception as err:
            failures.append(f"{where}: {type(err).__name__}: {err}".splitlines()[0])
        finally:
            signal.alarm(0)
    assert not failures, "\n".join(failures)
    assert 0 < accepted < SETTING_TRIALS // 2, accepted  # most random values are refused, not all


def test_random_set_values_on_the_command_line_give_one_error_line_and_write_nothing(tmp_path):
    rng = np.random.default_rng(32)
    names = method_names()
    failures = []
    for case in range(CLI_TRIALS):
        method = names[int(rng.integers(len(names)))]
        fields = field_names(get_method(method).config_class)
        settings = [_random_setting(fields, rng) for _ in range(int(rng.integers(1, 3)))]
        out = tmp_path / f"run{case}"
        args = ["learn", "pretext", str(tmp_path / "no-data"), "--out", str(out), "--method", method]
        for setting in settings:
            args += ["--set", setting]
        signal.alarm(SECONDS_PER_TRIAL)
        try:
            result = runner.invoke(app, args)
        finally:
            signal.alarm(0)
        lines = result.stderr.strip().splitlines()
        # Valid settings reach the data check, which refuses the missing dataset: exit 2 either way.
        if not (
            result.exit_code == 2
            and len(lines) == 1
            and lines[0].startswith("error: ")
            and "Traceback" not in result.output
            and not out.exists()
        ):
            failures.append(f"case {case}: {method} {settings}: exit {result.exit_code}: {result.output!r}")
    assert not failures, "\n".join(failures)
