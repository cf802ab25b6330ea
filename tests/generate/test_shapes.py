"""The moving-shapes sanity dataset: the shard format, its labels and states, and the CLI that reads it."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards, verify_dataset
from airhockey.generate.shapes import COLOURS, ShapesConfig, bounce, generate_shapes, shapes_episode
from airhockey.learn.data import ClipDataset

CONFIG = ShapesConfig(episodes=6, shapes=2, length=12, shard_size=4, width=32, height=32, radius=(3.0, 4.0))
runner = CliRunner()


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shapes") / "data"
    generate_shapes(CONFIG, path)
    return path


def test_it_writes_a_complete_balanced_dataset_that_verifies(shapes):
    assert verify_dataset(shapes).ok
    manifest = json.loads((shapes / "manifest.json").read_text())
    assert manifest["complete"] and manifest["episodes"] == 6 and manifest["class_counts"] == [3, 3]
    assert [s["episodes"] for s in manifest["shards"]] == [4, 2]
    assert manifest["config"]["policy"] == "shapes" and manifest["policy"]["name"] == "shapes"
    assert json.loads(manifest["policy"]["settings"])["shapes"] == 2
    with open_shards(shapes) as episodes:
        assert episodes.frames(0).shape == (12, 32, 32, 3)
        assert list(episodes.table()["label"]) == [0, 1, 0, 1, 0, 1]
        clips = ClipDataset(episodes, clip_length=5, stride=4)
        assert len(clips) == 6 * 2 and clips[0].shape == (5, 3, 32, 32)


def test_labels_and_readable_frames_follow_the_first_shapes_horizontal_motion(shapes):
    with open_shards(shapes) as episodes:
        for episode in episodes:
            vx = episode["puck_vel"][:, 0]
            assert episode["label"] == int(vx[-1] > 0) and episode["hit_button"] == -1
            hit = episode["hit_frame"]
            assert np.all(np.sign(vx[hit:]) == np.sign(vx[-1]))
            assert hit == 0 or np.sign(vx[hit - 1]) != np.sign(vx[-1])
            assert not episode["buttons_lit"].any() and not episode["actions"].any()


def test_the_stored_positions_are_where_the_shapes_are_drawn(shapes):
    with open_shards(shapes) as episodes:
        episode = episodes[2]
        frames = episode["frames"].astype(int)  # (T, H, W, 3)
        for colour, pos in ((COLOURS[0], episode["puck_pos"]), (COLOURS[1], episode["bar_pos"])):
            for t in (0, 5, 11):
                ys, xs = np.nonzero((frames[t] == colour).all(axis=-1))
                if len(xs) > 20:  # not hidden under the other shape
                    assert abs(xs.mean() + 0.5 - pos[t, 0]) < 0.75 and abs(ys.mean() + 0.5 - pos[t, 1]) < 0.75


def test_one_shape_leaves_the_second_shapes_state_empty():
    record = shapes_episode(ShapesConfig(episodes=1, length=5), 0)
    assert np.isnan(record.bar_pos).all() and np.isnan(record.bar_vel).all()
    assert not np.isnan(record.puck_pos).any()
    assert {tuple(c) for c in record.frames.reshape(-1, 3)} >= {COLOURS[0]}
    assert COLOURS[1] not in {tuple(c) for c in record.frames.reshape(-1, 3)}


def test_motion_bounces_off_the_walls_at_constant_speed():
    positions, velocities = bounce(
        np.array([5.0, 5.0]), np.array([3.0, -2.0]), np.full(2, 2.0), np.full(2, 10.0), 30
    )
    assert positions.min() >= 2.0 and positions.max() <= 10.0
    assert np.all(np.abs(velocities) == [3.0, 2.0])
    inside = np.all((positions[:-1] + velocities[:-1] > 2) & (positions[:-1] + velocities[:-1] < 10), axis=1)
    np.testing.assert_allclose(positions[1:][inside], (positions[:-1] + velocities[:-1])[inside])


def test_the_same_settings_give_the_same_bytes_and_another_seed_others(shapes, tmp_path):
    generate_shapes(CONFIG, tmp_path / "again")
    generate_shapes(ShapesConfig(**{**CONFIG.__dict__, "seed": 1}), tmp_path / "other")
    same = json.loads((tmp_path / "again" / "manifest.json").read_text())["shards"]
    other = json.loads((tmp_path / "other" / "manifest.json").read_text())["shards"]
    original = json.loads((shapes / "manifest.json").read_text())["shards"]
    assert [s["sha256"] for s in same] == [s["sha256"] for s in original]
    assert [s["sha256"] for s in other] != [s["sha256"] for s in original]


def test_verify_catches_a_label_that_does_not_match_the_motion(tmp_path):
    path = tmp_path / "data"
    generate_shapes(ShapesConfig(episodes=2, length=6, shard_size=2), path)
    shard = path / "shard-00000.h5"
    with h5py.File(shard, "r+") as f:
        f["episodes/label"][0] = 1 - f["episodes/label"][0]
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = __import__("hashlib").sha256(shard.read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_dataset(path).problems
    assert any("episode 0: label, hit_frame, hit_button" in p for p in problems), problems


def test_bad_settings_and_a_used_directory_are_user_errors(shapes):
    with pytest.raises(UserError, match=r"shapes must be .*got 3"):
        ShapesConfig(episodes=1, shapes=3)
    with pytest.raises(UserError, match="radius"):
        ShapesConfig(episodes=1, width=16, radius=(3.0, 5.0))
    with pytest.raises(UserError, match="not empty"):
        generate_shapes(CONFIG, shapes)


def test_the_cli_writes_one_that_the_data_commands_read(tmp_path):
    out = tmp_path / "shapes"
    result = runner.invoke(
        app, ["data", "shapes", str(out), "--episodes", "4", "--length", "8", "--shapes", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "4 episodes of 2 shape(s) (left 2, right 2)" in result.output
    assert runner.invoke(app, ["data", "verify", str(out)]).exit_code == 0
    inspected = runner.invoke(app, ["data", "inspect", str(out)])
    assert inspected.exit_code == 0 and "shapes" in inspected.output
    preview = runner.invoke(
        app, ["data", "preview", str(out), "--episode", "1", "--out", str(tmp_path / "p.gif")]
    )
    assert preview.exit_code == 0 and (tmp_path / "p.gif").stat().st_size > 0
    again = runner.invoke(app, ["data", "shapes", str(out), "--episodes", "4"])
    assert again.exit_code == 2 and "not empty" in again.output
