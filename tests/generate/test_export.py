"""``airhockey data export``: round trips through the real Minari and Hugging Face ``datasets``
libraries (frames bit for bit, labels, events, actions, rewards), and options checked before
anything is written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import airhockey
from airhockey.cli import app
from airhockey.envs import EVENTS
from airhockey.errors import UserError
from airhockey.generate import open_shards
from airhockey.generate.export import export_dataset
from tests.generate.helpers import SMALL, drop_episode_factors, rewrite_shard

minari = pytest.importorskip("minari")
datasets = pytest.importorskip("datasets")
runner = CliRunner()


def played(env_kwargs: dict, seed: int, target: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Rewards, terminations and truncations of the episode, stepped here in the plain env."""
    env = gym.make(airhockey.ENV_ID, **env_kwargs)
    env.reset(seed=seed, options={"target": target})
    steps = [env.step(action) for action in actions]
    env.close()
    return {
        "rewards": np.array([s[1] for s in steps]),
        "terminations": np.array([s[2] for s in steps]),
        "truncations": np.array([s[3] for s in steps]),
    }


@pytest.fixture(scope="module")
def minari_export(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("minari") / "root"
    result = runner.invoke(app, ["data", "export", str(small_dataset), "--to", "minari", str(out)])
    assert result.exit_code == 0, result.output
    assert "8 episodes at 50 fps" in result.stdout and "airhockey/data-v0" in result.stdout
    return out


def test_a_relative_output_folder_exports_to_minari(small_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "export", str(small_dataset), "--to", "minari", "runs/minari"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "runs" / "minari"))
    assert minari.load_dataset("airhockey/data-v0").total_episodes == 8


def test_minari_loads_every_episode_bit_for_bit_with_labels_rewards_and_the_env(
    small_dataset, minari_export, monkeypatch
):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_export))
    dataset = minari.load_dataset("airhockey/data-v0")
    source = open_shards(small_dataset)
    table = source.table()
    assert dataset.total_episodes == len(source) == 8
    assert dataset.total_steps == int((table["length"] - 1).sum())
    metadata = dataset.storage.metadata
    assert metadata["jpeg_encoding"] is False  # Minari's default JPEG would change every frame
    assert metadata["airhockey"]["fps"] == 50.0 and metadata["airhockey"]["label_names"] == ["left", "right"]
    scalars = list(dataset.storage.get_episode_metadata(range(8)))
    for i, episode in enumerate(dataset.iterate_episodes()):
        stored = source[i]
        pixels = episode.observations["pixels"]
        assert pixels.dtype == np.uint8 and np.array_equal(pixels, stored["frames"])
        assert np.array_equal(episode.actions, stored["actions"])
        for name in ("label", "hit_button", "target", "hit_frame", "strike_frame", "seed"):
            assert scalars[i][name] == table[name][i], name
        for name in ("bar_contact", "rim_contact", "button_contact", "buttons_lit", "puck_pos"):
            assert np.array_equal(episode.infos[name], stored[name]), name
        plain = played(
            source.attrs["env_kwargs"], int(table["seed"][i]), int(table["target"][i]), stored["actions"]
        )
        assert np.array_equal(episode.rewards, plain["rewards"])
        assert np.array_equal(episode.terminations, plain["terminations"]) and episode.terminations[-1]
        assert np.array_equal(episode.truncations, plain["truncations"])
        assert np.allclose(
            episode.rewards,
            sum(episode.infos[f"reward_{k}"][1:] for k in ("approach", "aim", "outcome", "ctrl")),
        )
    env = dataset.recover_environment()  # the recorded spec makes the env that observes the frames
    obs, _ = env.reset(seed=int(table["seed"][0]), options={"target": int(table["target"][0])})
    assert np.array_equal(obs["pixels"], source[0]["frames"][0])
    env.close()


def test_hf_loads_every_episode_bit_for_bit_with_declared_features(small_dataset, tmp_path):
    out = tmp_path / "hf"
    done = export_dataset(small_dataset, "hf", out)
    assert (done.episodes, done.fps) == (8, 50.0)
    dataset = datasets.load_from_disk(str(out))
    assert dataset.features["label"].names == ["left", "right"]
    assert str(dataset.features["frames"].dtype) == "uint8"
    rows = dataset.with_format("numpy", dtype=None)  # the stored dtypes, not numpy's int64/float32 defaults
    source = open_shards(small_dataset)
    table = source.table()
    for i in range(len(source)):
        row, stored = rows[i], source[i]
        assert row["frames"].dtype == np.uint8 and np.array_equal(row["frames"], stored["frames"])
        assert row["actions"].dtype == np.float32 and np.array_equal(row["actions"], stored["actions"])
        for name in ("label", "hit_button", "target", "hit_frame", "strike_frame", "seed", "length"):
            assert row[name] == table[name][i], name
        assert row["episode"] == i and row["fps"] == 50.0
        for name in ("bar_contact", "rim_contact", "button_contact", "buttons_lit", "bar_vel"):
            assert np.array_equal(row[name], stored[name]), name
        plain = played(
            source.attrs["env_kwargs"], int(table["seed"][i]), int(table["target"][i]), stored["actions"]
        )
        for name in ("rewards", "terminations", "truncations"):
            assert np.array_equal(row[name], plain[name]), name
        assert row["state"].shape == (table["length"][i], 13)


def test_a_format1_dataset_exports_the_events_its_shards_lack_from_the_replay(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)

    def downgrade(f: h5py.File) -> None:  # as format 1 wrote it: no events, no strike_frame
        drop_episode_factors(f)
        for name in (*EVENTS, "episodes/strike_frame"):
            del f[name]
        f.attrs["format_version"] = 1

    for index in range(SMALL.num_shards):
        rewrite_shard(data, index, downgrade)
    manifest = json.loads((data / "manifest.json").read_text())
    (data / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    export_dataset(data, "hf", tmp_path / "out")
    rows = datasets.load_from_disk(str(tmp_path / "out")).with_format("numpy", dtype=None)
    original = open_shards(small_dataset)
    for i in range(len(original)):
        for name in EVENTS:
            assert np.array_equal(rows[i][name], original[i][name]), name
        assert rows[i]["strike_frame"] == original.info(i)["strike_frame"]


def test_a_frame_the_replay_does_not_give_back_stops_the_export_and_leaves_nothing(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)

    def touch_one_pixel(f):
        f["frames"][40, 5, 5] = 255 - f["frames"][40, 5, 5]  # frame 40 of shard 1: within episode 4

    rewrite_shard(data, 1, touch_one_pixel)
    with pytest.raises(UserError, match=r"episode 4: its replay does not give back its stored frames"):
        export_dataset(data, "hf", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no OUT, no partial directory


@pytest.mark.parametrize(
    "args,message",
    [
        (["--to", "lerobot"], "LeRobot layout is not offered"),
        (["--to", "parquet"], "--to must be one of minari, hf, got 'parquet'"),
        (["--to", "hf", "--dataset-id", "a/b-v0"], "--dataset-id names a Minari dataset"),
        (["--to", "minari", "--dataset-id", "no version"], "is not a Minari dataset id"),
    ],
)
def test_a_bad_option_is_one_line_and_writes_nothing(small_dataset, tmp_path, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["data", "export", str(small_dataset), str(out), *args])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_an_output_in_use_or_a_dataset_without_an_env_is_refused(small_dataset, tmp_path):
    full = tmp_path / "full"
    (full / "keep").mkdir(parents=True)
    with pytest.raises(UserError, match="exists and is not empty"):
        export_dataset(small_dataset, "hf", full)
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(UserError, match="symbolic link"):
        export_dataset(small_dataset, "hf", tmp_path / "link")
    result = runner.invoke(app, ["data", "shapes", str(tmp_path / "shapes"), "--episodes", "2"])
    assert result.exit_code == 0, result.output
    with pytest.raises(UserError, match="moving-shapes dataset has no env to replay"):
        export_dataset(tmp_path / "shapes", "minari", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "link", "shapes", "target"]
    export_dataset(small_dataset, "hf", tmp_path / "target" / "empty_ok")  # an empty directory is taken
    (tmp_path / "empty").mkdir()
    assert export_dataset(small_dataset, "minari", tmp_path / "empty").episodes == 8


def test_a_missing_library_names_the_export_extra(small_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # what the import machinery does for an absent package
    result = runner.invoke(app, ["data", "export", str(small_dataset), "--to", "hf", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: data export --to hf needs the 'export' extra: pip install \"airhockey[export]\""
    )
    assert list(tmp_path.iterdir()) == []
