"""The one validation layer of numeric settings (``airhockey.ranges``): every numeric field of every
config declares its range, and NaN, infinities, negative and absurd values are refused in one line
that gives the range, however the config is made (constructor, ``from_dict``, ``--set``, the CLI)."""

from __future__ import annotations

import dataclasses
import math
import time
import typing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from airhockey.agents.config import TrainConfig, load_hyperparams
from airhockey.backends import Backend
from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig, ShapesConfig
from airhockey.learn.config import (
    ClassifyConfig,
    CompareConfig,
    EncoderConfig,
    PretextConfig,
    apply_settings,
    from_dict,
    most_training_episodes,
)
from airhockey.learn.methods import get_method, method_names
from airhockey.learn.nn.stack_cnn import StackCNNConfig
from airhockey.ranges import Range, check_number, field_range

runner = CliRunner()


def defaults() -> list[object]:
    """A default instance of every config dataclass of the package."""
    methods = [get_method(name).config_class() for name in method_names()]
    return [
        EncoderConfig(),
        PretextConfig(),
        ClassifyConfig(),
        CompareConfig(),
        StackCNNConfig(),
        *methods,
        GenerateConfig(episodes=1),
        ShapesConfig(episodes=1),
        TrainConfig(out=Path("unused")),
        load_hyperparams(),
        Backend(),
    ]


def numeric_fields(config: object) -> list[tuple[str, bool]]:
    """(name, is_int) of each field whose type holds int or float (alone, optional or in a tuple)."""
    hints = typing.get_type_hints(type(config))
    out = []
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        flat = str(hints[f.name])
        if "int" in flat or "float" in flat:
            out.append((f.name, "float" not in flat))
    return out


def test_every_numeric_field_of_every_config_declares_its_range():
    missing = [
        f"{type(config).__name__}.{name}"
        for config in defaults()
        for name, _ in numeric_fields(config)
        if field_range(type(config), name) is None
    ]
    assert not missing, missing


def bad_values(allowed: Range, integer: bool) -> list[object]:
    values: list[object] = [] if integer else [math.nan, math.inf, -math.inf]
    if allowed.low is not None:
        values.append(int(allowed.low) - 1 if integer else allowed.low - 1.0)
    if allowed.high is not None:
        values.append(int(allowed.high) * 10 + 1 if integer else allowed.high * 10 + 1.0)
    return values


CASES = [
    pytest.param(config, name, value, id=f"{type(config).__name__}.{name}={value}")
    for config in defaults()
    for name, integer in numeric_fields(config)
    for value in bad_values(field_range(type(config), name), integer)  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("config", "name", "value"), CASES)
def test_nan_infinite_negative_and_absurd_values_are_refused_in_one_line_with_the_range(config, name, value):
    current = getattr(config, name)
    sequence = "tuple" in str(typing.get_type_hints(type(config))[name])
    bad = tuple(value for _ in current or ()) or (value,) if sequence else value
    if isinstance(current, list):
        bad = [value for _ in current]
    with pytest.raises(ValueError) as refused:
        dataclasses.replace(config, **{name: bad})  # type: ignore[type-var]
    message = str(refused.value)
    assert "\n" not in message and name in message, message
    assert field_range(type(config), name).describe() in message, message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("cls", "fields", "fragment"),
    [
        (PretextConfig, {"lr": math.nan}, "lr must be a finite number in [0, 10], got nan"),
        (ClassifyConfig, {"epochs": "3"}, "epochs must be an integer in [1, 100000], got '3'"),
        (ClassifyConfig, {"lr": True}, "lr must be a finite number"),
        (CompareConfig, {"search_lrs": [1e-3, math.inf]}, "search_lrs must be a finite number in (0, 10]"),
        (CompareConfig, {"training": {"batch_size": 10**9}}, "batch_size must be an integer in [1, 65536]"),
        (EncoderConfig, {"image_size": [64]}, "image_size must hold 2 values"),
        (EncoderConfig, {"kernel_size": -1}, "kernel_size must be an integer in [1, 15], got -1"),
    ],
)
def test_stored_configs_read_back_are_checked_the_same_way(cls, fields, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        from_dict(cls, fields)


def test_a_range_reads_as_an_interval():
    assert Range(1, 1024).describe() == "[1, 1024]"
    assert Range(0, 10, low_open=True).describe() == "(0, 10]"
    assert Range(0, 1, high_open=True).describe() == "[0, 1)"
    assert Range(0).describe() == ">= 0"
    check_number("x", 0.5, Range(0, 1, high_open=True))
    with pytest.raises(UserError, match=r"x must be a finite number in \[0, 1\), got 1"):
        check_number("x", 1, Range(0, 1, high_open=True))


def test_an_empty_tuple_value_is_the_empty_tuple_where_the_field_allows_it():
    assert apply_settings(CompareConfig(), ["search_lrs="]).search_lrs == ()
    assert apply_settings(CompareConfig(), ["frames_k=()"]).frames_k == ()
    assert apply_settings(EncoderConfig(), ["stem_channels="]).stem_channels == ()
    for config, setting, fragment in (
        (EncoderConfig(), "image_size=", "takes 2 values"),
        (EncoderConfig(), "image_size=64", "takes 2 values"),
        (CompareConfig(), "budgets=", "budgets must be positive"),
        (get_method("lvln").config_class(), "channels=", "one entry per level"),
        (PretextConfig(), "lr=", "must be a number, got ''"),
    ):
        with pytest.raises(UserError, match=fragment) as refused:
            apply_settings(config, [setting])
        assert "\n" not in str(refused.value)


def test_a_derived_default_follows_the_field_it_depends_on_but_a_given_value_does_not():
    assert ClassifyConfig().freeze_epochs == 3
    assert ClassifyConfig(epochs=2).freeze_epochs == 1
    assert ClassifyConfig(epochs=1).freeze_epochs == 0
    assert apply_settings(CompareConfig(), ["training.epochs=1"]).training.freeze_epochs == 0
    given = apply_settings(CompareConfig(), ["training.freeze_epochs=2"])
    with pytest.raises(UserError, match="freeze_epochs must be in 0-1"):
        apply_settings(given, ["training.epochs=1"])
    assert ShapesConfig(episodes=1, width=16).radius == (1.0, 1.5)
    assert ShapesConfig(episodes=1).radius == (4.0, 6.0)


def test_the_most_training_episodes_bounds_every_split_of_that_many_episodes():
    from airhockey.learn.data import split_episodes

    rng = np.random.default_rng(0)
    for episodes in (10, 20, 50, 101, 300):
        for classes in (2, 5):
            for _ in range(20):
                labels = rng.integers(classes, size=episodes)
                train = len(split_episodes(labels, seed=int(rng.integers(100))).train)
                assert train <= most_training_episodes(episodes, classes)


def cli_cases(tmp: Path) -> list[list[str]]:
    out, data = str(tmp / "out"), str(tmp / "no-data")
    pre = ["learn", "pretext", data, "--out", out]
    cls = ["learn", "classify", data, "--out", out, "--scratch"]
    cmp = ["learn", "compare", data, "--out", out, "--arm", "scratch"]
    gen = ["generate", out, "--episodes", "3"]
    return [
        [*pre, "--lr", "nan"],
        [*pre, "--lr", "inf"],
        [*pre, "--minutes", "inf"],
        [*pre, "--minutes", "-1"],
        [*pre, "--batch-size", "1000000"],
        [*pre, "--set", "moving_weight=nan"],
        [*pre, "--set", "encoder.kernel_size=-1"],
        [*pre, "--set", "encoder.hidden_channels=100000"],
        [*pre, "--set", "frames_in=100000"],
        [*pre, "--method", "sorting", "--set", "motion_keep=inf"],
        [*pre, "--method", "lvln", "--set", "channels=8,-1"],
        [*cls, "--lr", "nan"],
        [*cls, "--encoder-lr", "-inf"],
        [*cls, "--epochs", "1000000"],
        [*cmp, "--set", "search_lrs=1e-3,nan"],
        [*cmp, "--set", "training.lr=inf"],
        [*cmp, "--set", "hidden=100000"],
        [*cmp, "--backend", "ray", "--ray-cpus-per-task", "nan"],
        [*gen, "--width", "100000"],
        [*gen, "--backend", "ray", "--ray-cpus-per-task", "inf"],
        ["data", "shapes", out, "--episodes", "2", "--length", "1000000"],
        ["agent", "train", "--out", out, "--hp", "learning_rate=nan"],
        ["agent", "train", "--out", out, "--hp", "gamma=inf"],
        ["agent", "train", "--out", out, "--seed", str(2**40)],
        ["learn", "benchmark", out, "--quick", "--steps", "10000000000"],
        ["pipeline", out, "--quick", "--set", "clip_stride=nan"],
    ]


def test_bad_numbers_on_the_command_line_are_one_line_errors_before_anything_is_written(tmp_path):
    for args in cli_cases(tmp_path):
        result = runner.invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and " must be " in lines[0], (args, lines)
        assert not (tmp_path / "out").exists(), args


@pytest.mark.parametrize("address", ["localhost:99999", "localhost:port", "localhost:", "10.0.0.5"])
def test_a_malformed_ray_address_is_refused_at_once_in_one_line(tmp_path, address):
    out = tmp_path / "out"
    start = time.monotonic()
    result = runner.invoke(
        app, ["generate", str(out), "--episodes", "2", "--backend", "ray", "--ray-address", address]
    )
    assert time.monotonic() - start < 10
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "PORT in 1-65535" in lines[0], lines
    assert not out.exists()


def test_an_unreachable_ray_address_is_refused_within_the_connect_timeout(tmp_path):
    from airhockey.backends import CONNECT_TIMEOUT_S, check_backend

    start = time.monotonic()
    with pytest.raises(UserError, match="cannot reach the Ray cluster") as refused:
        check_backend(Backend("ray", "127.0.0.1:1"))
    assert time.monotonic() - start < CONNECT_TIMEOUT_S + 1
    assert "\n" not in str(refused.value)
