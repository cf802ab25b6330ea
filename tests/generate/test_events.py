"""Contact events and the strike in the data: recorded from MuJoCo's contacts, checked by verify,
derived for format 1 datasets, and written by the shapes dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import mujoco
import numpy as np
import pytest

from airhockey.envs import EVENTS
from airhockey.errors import UserError
from airhockey.generate import generate, open_shards, verify_dataset
from airhockey.generate.records import FORMAT_VERSION
from airhockey.generate.rollout import make_env, reset_options
from airhockey.generate.shapes import ShapesConfig, shapes_episode
from tests.generate.helpers import SMALL, drop_episode_factors, rewrite_shard


def replayed_contacts(episode, monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """Per frame (T,), whether the puck touched the bar, a rim or a button in the physics steps
    leading to the frame, found by replaying the episode and reading MuJoCo's contacts after
    every physics step, whichever way the env calls ``mj_step``."""
    env = make_env(episode["env_kwargs"])
    model = env.unwrapped.model
    kinds = {model.geom("bar").id: "bar_contact", model.geom("puck").id: None}
    kinds |= {model.geom(f"rim_{side}").id: "rim_contact" for side in ("left", "right", "far", "near")}
    kinds |= {model.geom(f"button{k}").id: "button_contact" for k in range(5)}
    touched: list[set[str]] = []
    real_step = mujoco.mj_step

    def spy(m: mujoco.MjModel, d: mujoco.MjData, nstep: int = 1) -> None:
        for _ in range(nstep):
            real_step(m, d)
            for pair in d.contact.geom[: d.ncon]:
                names = {kinds[int(g)] for g in pair}
                assert None in names, "every contact has the puck on one side"
                touched[-1].update(names - {None})

    monkeypatch.setattr(mujoco, "mj_step", spy)
    env.reset(seed=episode["seed"], options=reset_options(episode["target"]))
    touched.append(set())  # the first frame: no physics step leads to it
    for action in episode["actions"]:
        touched.append(set())
        env.step(action)
    monkeypatch.undo()
    env.close()
    return {name: np.array([name in frame for frame in touched]) for name in EVENTS}


def test_strike_frame_and_events_agree_with_a_replays_contacts(small_dataset, monkeypatch):
    episodes = open_shards(small_dataset)
    table = episodes.table()
    for i in range(len(episodes)):
        contacts = replayed_contacts(episodes[i], monkeypatch)
        for name in EVENTS:
            np.testing.assert_array_equal(episodes.read(i, name), contacts[name], err_msg=f"{i} {name}")
        strike = np.flatnonzero(contacts["bar_contact"])
        assert table["strike_frame"][i] == strike[0] > 0
        assert np.flatnonzero(contacts["button_contact"])[0] == table["hit_frame"][i]
    assert table["strike_frame"].min() >= 1 and (table["strike_frame"] < table["hit_frame"]).all()


def _shift_strike(f: h5py.File) -> None:
    f["episodes/strike_frame"][1] += 1


def _bar_contact_as_bytes(f: h5py.File) -> None:
    flags = f["bar_contact"][()]
    del f["bar_contact"]
    f["bar_contact"] = flags.astype(np.uint8)


def _button_contact_early(f: h5py.File) -> None:
    f["button_contact"][f["episodes/frame_start"][0] + 1] = True


def _event_at_first_frame(f: h5py.File) -> None:
    f["rim_contact"][f["episodes/frame_start"][2]] = True


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (_shift_strike, "episode 1: strike_frame is"),
        (_bar_contact_as_bytes, "bar_contact is uint8"),
        (_button_contact_early, "episode 0: button_contact first shows a contact at frame 1"),
        (_event_at_first_frame, "a contact event at an episode's first frame"),
    ],
    ids=["strike_frame", "flags_not_bool", "button_contact", "first_frame"],
)
def test_verify_catches_events_that_contradict_the_episode_table(small_dataset, tmp_path, edit, fragment):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    assert verify_dataset(data).ok
    rewrite_shard(data, 0, edit)
    problems = verify_dataset(data).problems
    assert any(p.startswith("shard-00000.h5: ") and fragment in p for p in problems), problems


@pytest.fixture(scope="module")
def format1_dataset(small_dataset, tmp_path_factory) -> Path:
    """The small dataset as format 1 wrote it: no events, no strike_frame, format_version 1."""
    data = tmp_path_factory.mktemp("format1") / "data"
    shutil.copytree(small_dataset, data)

    def downgrade(f: h5py.File) -> None:
        drop_episode_factors(f)
        for name in (*EVENTS, "episodes/strike_frame"):
            del f[name]
        f.attrs["format_version"] = 1

    for index in range(SMALL.num_shards):
        rewrite_shard(data, index, downgrade)
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}, indent=2))
    return data


def test_a_format1_dataset_opens_with_strike_frames_derived_and_verifies(small_dataset, format1_dataset):
    old, new = open_shards(format1_dataset), open_shards(small_dataset)
    # Derived from the puck's first motion; on these episodes equal to the recorded first contacts.
    np.testing.assert_array_equal(old.table()["strike_frame"], new.table()["strike_frame"])
    assert old.info(0)["strike_frame"] == new.info(0)["strike_frame"]
    episode = old[0]
    assert "bar_contact" not in episode and set(EVENTS).isdisjoint(episode)
    np.testing.assert_array_equal(episode["puck_pos"], new[0]["puck_pos"])
    verification = verify_dataset(format1_dataset)
    assert verification.ok and verification.episodes == SMALL.episodes, verification.problems


def test_events_of_a_format1_dataset_are_a_one_line_error_saying_how_to_regenerate(format1_dataset):
    episodes = open_shards(format1_dataset)
    for read in (lambda: episodes.read(0, "bar_contact"), lambda: episodes[3]["rim_contact"]):
        with pytest.raises(UserError) as err:
            read()
        message = str(err.value)
        assert "\n" not in message and "format 1" in message and "airhockey generate" in message


def test_resuming_a_format1_dataset_is_refused(format1_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(format1_dataset, data)
    with pytest.raises(UserError, match=f"format version 1, this package writes {FORMAT_VERSION}"):
        generate(SMALL, data, workers=1, resume=True, progress=False)


def test_shapes_episodes_mark_bounces_as_rim_contacts_and_are_never_struck():
    config = ShapesConfig(episodes=4, length=40, width=32, height=32, radius=(2.0, 3.0), speed=(2.0, 3.0))
    bounces = 0
    for index in range(config.episodes):
        record = shapes_episode(config, index)
        turned = np.concatenate([[False], (np.diff(np.sign(record.puck_vel), axis=0) != 0).any(axis=1)])
        np.testing.assert_array_equal(record.rim_contact, turned)
        bounces += int(turned.sum())
        assert record.strike_frame == -1 and not record.bar_contact.any() and not record.button_contact.any()
    assert bounces >= 2
