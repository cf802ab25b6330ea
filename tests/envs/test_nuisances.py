"""AirHockey-v0's visual nuisances: they change the frames, never the physics, and replay from the seed."""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import airhockey
from airhockey.envs.nuisances import FACTOR_NAMES
from airhockey.tasks import Nuisances

MID = {
    "camera_jitter": 0.5,
    "camera_shake": 0.5,
    "lighting": 0.5,
    "colours": 0.5,
    "distractors": 2,
    "sensor_noise": 0.05,
    "occluder": 0.25,
}
"""Each knob at a middling strength."""
FACTOR_KEYS = {
    "camera_jitter": {
        "camera_shift_right",
        "camera_shift_up",
        "camera_roll_deg",
        "camera_pitch_deg",
        "camera_yaw_deg",
        "camera_zoom",
    },
    "camera_shake": {"camera_shake"},
    "lighting": {"light_intensity", "light_tint_r", "light_tint_g", "light_tint_b", "light_tilt_deg"}
    | {"light_azimuth_deg"},
    "colours": {
        f"{p}_{w}_shift" for p in ("surface", "rims", "bar", "puck") for w in ("hue", "saturation", "value")
    },
    "distractors": {"distractors"},
    "sensor_noise": {"noise_std"},
    "occluder": {"occluder_x", "occluder_y", "occluder_side"},
}

# sha256 of the frames of ``frames_sha`` with no nuisances, rendered by the env before nuisances
# existed (Mesa's llvmpipe through EGL): the default env must draw exactly these pixels.
PINNED = {
    ("top", 0): "4f6d41411b1bb83f224c38dde16b3a001a94de46a300ae1057e5d30890faa490",
    ("top", 7): "57cac427cdff1b6fb1ebca853f073eeafce2917a72e3d17d28c2c55609566ca0",
    ("perspective", 3): "e1efc4e06cc1ff8c88dfe5f6034ec0069e10a0fb950a366174f54b05ae6adf64",
}


def make(**kwargs) -> gym.Env:
    return gym.make(airhockey.ENV_ID, target_buttons="all", **kwargs)


def frames_sha(camera: str, seed: int, **kwargs) -> str:
    """sha256 of 41 frames of a random-action rollout, reset with ``seed + 100`` after an episode end."""
    env = make(render_mode="rgb_array", camera_name=camera, **kwargs)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256(env.render().tobytes())
    for _ in range(40):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        digest.update(env.render().tobytes())
        if terminated or truncated:
            env.reset(seed=seed + 100)
    env.close()
    return digest.hexdigest()


def gl_renderer() -> str:
    """The OpenGL renderer that draws the env's frames (its ``GL_RENDERER`` string)."""
    from OpenGL import GL

    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    env.render()  # makes the env's context current
    name = GL.glGetString(GL.GL_RENDERER).decode()
    env.close()
    return name


@pytest.mark.parametrize(("camera", "seed"), list(PINNED))
def test_without_nuisances_the_frames_are_the_pixels_rendered_before_nuisances_existed(camera, seed):
    renderer = gl_renderer()
    if "llvmpipe" not in renderer:  # another rasteriser may round a pixel's colour otherwise
        pytest.skip(f"the pinned frames are Mesa llvmpipe's; this machine renders with {renderer}")
    assert frames_sha(camera, seed) == PINNED[camera, seed]
    assert frames_sha(camera, seed, nuisances={}) == PINNED[camera, seed]
    assert frames_sha(camera, seed, nuisances=Nuisances()) == PINNED[camera, seed]


def trace(knobs: dict, seed: int = 3, steps: int = 45) -> tuple[list, list[np.ndarray], list[dict]]:
    """Physics (state, physical state, reward, info without factors) and frames of a scripted rollout
    over two episodes, the second reset without a seed; and the episodes' factors."""
    env = make(obs_type="state_pixels", nuisances=knobs).unwrapped
    obs, info = env.reset(seed=seed)
    factors = [info.pop("episode_factors")]
    physics, frames = [(obs["state"], env.physical_state(), info)], [obs["pixels"]]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs, reward, terminated, _, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        physics.append((obs["state"], env.physical_state(), reward, info))
        frames.append(obs["pixels"])
        if terminated or len(frames) == 30:
            obs, info = env.reset()
            factors.append(info.pop("episode_factors"))
            physics.append((obs["state"], env.physical_state(), info))
            frames.append(obs["pixels"])
    env.close()
    return physics, frames, factors


def flat(physics: list) -> list:
    """Every number of a ``trace``'s physics, in order."""
    out = []
    for item in physics:
        for part in item:
            values = part.values() if isinstance(part, dict) else [part]
            out.extend(np.asarray(v).tolist() for v in values)
    return out


@pytest.mark.parametrize("knob", list(MID))
def test_each_knob_alone_changes_the_pixels_and_not_the_physics(knob):
    plain_physics, plain_frames, plain_factors = trace({})
    physics, frames, factors = trace({knob: MID[knob]})
    assert flat(physics) == flat(plain_physics)  # the same states, contacts, rewards, labels, targets
    assert plain_factors == [{}, {}]
    assert all(set(f) == FACTOR_KEYS[knob] for f in factors)
    changed = [not np.array_equal(a, b) for a, b in zip(frames, plain_frames, strict=True)]
    assert all(changed) if knob != "occluder" else any(changed)  # the occluder may hide nothing


@pytest.mark.parametrize("knob", ["camera_shake", "distractors", "sensor_noise"])
def test_per_frame_knobs_change_the_frames_of_a_still_table(knob):
    env = make(render_mode="rgb_array", nuisances={knob: MID[knob]})
    env.reset(seed=0)
    still = np.zeros(2, dtype=np.float32)  # the bar stays put and the puck at rest
    frames = [env.render()]
    for _ in range(3):
        env.step(still)
        frames.append(env.render())
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    np.testing.assert_array_equal(env.render(), frames[-1])  # rendering again draws nothing new
    env.close()


def test_an_episode_with_every_knob_on_replays_exactly_from_its_reset_seed():
    knobs = {**MID, "distractors": 4}
    _, frames, factors = trace(knobs, seed=11)
    again_physics, again_frames, again_factors = trace(knobs, seed=11)
    assert flat(again_physics) == flat(trace({}, seed=11)[0])
    assert factors == again_factors
    for a, b in zip(frames, again_frames, strict=True):
        np.testing.assert_array_equal(a, b)
    env = make(render_mode="rgb_array", obs_type="pixels", nuisances=knobs)
    for _ in range(2):  # the same env, reset with the same seed after another episode
        obs, info = env.reset(seed=11)
        np.testing.assert_array_equal(obs, frames[0])
        np.testing.assert_array_equal(env.render(), frames[0])
        assert info["episode_factors"] == factors[0]
        env.reset(seed=12)
    env.close()


def test_episode_factors_are_flat_json_numbers_that_differ_across_seeds():
    knobs = {**MID, "distractors": 3}
    env = make(nuisances=knobs).unwrapped
    assert env.episode_factors == {}
    drawn = []
    for seed in range(3):
        _, info = env.reset(seed=seed)
        assert info["episode_factors"] == env.episode_factors
        assert set(env.episode_factors) == set().union(*FACTOR_KEYS.values())
        assert list(env.episode_factors) == [n for names in FACTOR_NAMES.values() for n in names]
        assert all(type(v) is float for v in env.episode_factors.values())
        assert json.loads(json.dumps(env.episode_factors)) == env.episode_factors
        drawn.append(env.episode_factors)
    fixed = {"camera_shake", "distractors", "occluder_side"}  # the knobs themselves
    for key in set(drawn[0]) - fixed:
        assert len({d[key] for d in drawn}) == 3, key
    assert make().reset(seed=0)[1]["episode_factors"] == {}


def test_plain_and_nuisance_envs_rendering_in_turn_through_the_shared_renderer_keep_their_own_frames():
    plain = make(render_mode="rgb_array")
    plain.reset(seed=2)
    alone = plain.render()
    dressed = make(render_mode="rgb_array", nuisances={**MID, "distractors": 4})
    dressed.reset(seed=2)
    dressed_alone = dressed.render()
    for _ in range(2):
        np.testing.assert_array_equal(plain.render(), alone)
        np.testing.assert_array_equal(dressed.render(), dressed_alone)
    plain.close()
    dressed.close()


@pytest.mark.parametrize(
    ("nuisances", "message"),
    [
        ({"camera_jitter": 2.0}, r"^nuisances: camera_jitter must be .*\[0, 1\], got 2"),
        ({"distractors": 5}, r"^nuisances: distractors must be an integer in \[0, 4\], got 5$"),
        ({"distractors": 1.5}, r"^nuisances: distractors must be an integer"),
        ({"sensor_noise": float("nan")}, r"^nuisances: sensor_noise must be"),
        ({"fog": 0.3}, r"^unknown nuisance knob 'fog': use camera_jitter, camera_shake, "),
        ("hard", r"^nuisances must be a Nuisances, a dict of its knobs or None, got str$"),
    ],
)
def test_invalid_knobs_are_refused_in_one_line_naming_the_knob(nuisances, message):
    with pytest.raises(ValueError, match=message) as err:
        make(nuisances=nuisances)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("obs_type", ["pixels", "state_pixels"])
def test_gymnasiums_checker_passes_with_every_knob_on(obs_type):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = make(render_mode="rgb_array", obs_type=obs_type, nuisances={**MID, "distractors": 4}).unwrapped
        gym_check_env(env)
    env.close()
