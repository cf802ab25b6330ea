"""Settings: ``--set key=value`` parsing, nested fields, round trips, and one-line errors."""

from __future__ import annotations

import json

import pytest

from airhockey.errors import UserError
from airhockey.learn.config import (
    ClassifyConfig,
    CompareConfig,
    EncoderConfig,
    PretextConfig,
    apply_settings,
    field_names,
    from_dict,
    to_dict,
)
from airhockey.learn.methods.next_frame import NextFrameConfig


def test_settings_of_every_type_and_nested_ones_apply():
    config = apply_settings(
        NextFrameConfig(),
        [
            "frames_in=5",  # int
            "moving_weight=0.5",  # float
            "composite=false",  # bool
            "encoder.stem_channels=8,16",  # tuple
            "encoder.image_size=(32, 32)",
        ],
    )
    assert config.frames_in == 5 and config.moving_weight == 0.5 and config.composite is False
    assert config.encoder == EncoderConfig(image_size=(32, 32), stem_channels=(8, 16))
    assert apply_settings(PretextConfig(), ["steps=none", "minutes=2.5"]) == PretextConfig(
        steps=None, minutes=2.5
    )
    assert apply_settings(PretextConfig(), ["steps=7"]).steps == 7
    assert apply_settings(NextFrameConfig(), ["encoder.stem_channels="]).encoder.stem_channels == ()


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("frames=3", "unknown setting 'frames' of NextFrameConfig; valid: encoder.image_size"),
        ("encoder.depth=2", "unknown setting 'encoder.depth'"),
        ("encoder=3", "is a group"),
        ("composite=maybe", "composite must be true or false"),
        ("moving_weight=heavy", "moving_weight must be a number"),
        ("encoder.kernel_size=4", "kernel_size must be odd"),
        ("=3", "key=value"),
    ],
)
def test_a_bad_setting_is_a_user_error_naming_it(setting, fragment):
    with pytest.raises(UserError) as caught:
        apply_settings(NextFrameConfig(), [setting])
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_configs_round_trip_through_json():
    for config in (NextFrameConfig(frames_in=2), PretextConfig(steps=5), CompareConfig(budgets=(1, None))):
        assert from_dict(type(config), json.loads(json.dumps(to_dict(config)))) == config
    with pytest.raises(UserError, match="no field 'bogus'"):
        from_dict(ClassifyConfig, {"bogus": 1})
    assert "encoder.hidden_channels" in field_names(NextFrameConfig)
