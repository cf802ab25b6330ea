"""The generate and data commands: output, one-line errors, verify, and kill -9 then --resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import imageio.v3 as iio
import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import GenerateConfig, generate, open_shards
from tests.generate.helpers import file_digests

runner = CliRunner()


def copy_dataset(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_generate_inspect_preview_and_verify_through_the_cli(tmp_path):
    out = tmp_path / "data"
    args = ["generate", str(out), "--episodes", "4", "--width", "32", "--height", "32"]
    result = runner.invoke(app, [*args, "--policy", "scripted", "--shard-size", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "4 episodes (left 2, right 2)" in result.stdout and "in 2 shards" in result.stdout

    result = runner.invoke(app, ["data", "inspect", str(out)])
    assert result.exit_code == 0 and "left 2, right 2" in result.stdout and "32x32" in result.stdout

    result = runner.invoke(app, ["data", "verify", str(out)])
    assert result.exit_code == 0 and "ok:" in result.stdout and "4 episodes" in result.stdout

    clip = tmp_path / "clip.gif"
    result = runner.invoke(app, ["data", "preview", str(out), "--episode", "1", "--out", str(clip)])
    assert result.exit_code == 0, result.output
    video = iio.imread(clip)  # (frames, H, W, 3); GIF merges repeated frames
    assert 1 < len(video) <= len(open_shards(out)[1]["frames"])
    assert video.shape[1] > video.shape[2] and (video[0, :4] == 20).mean() > 0.5  # the label banner on top


def test_a_corrupted_byte_fails_verify_naming_the_shard(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    shard = data / "shard-00001.h5"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    result = runner.invoke(app, ["data", "verify", str(data)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: shard-00001.h5: SHA-256 differs from the manifest: the file changed or is corrupt since "
        "it was written"
    ]


def test_verify_checks_labels_against_button_states_even_when_checksums_match(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    with h5py.File(data / "shard-00000.h5", "r+") as f:
        f["episodes/label"][0] = 1 - f["episodes/label"][0]
    manifest = (data / "manifest.json").read_text()
    digest = file_digests(data)["shard-00000.h5"]
    old = file_digests(small_dataset)["shard-00000.h5"]
    (data / "manifest.json").write_text(manifest.replace(old, digest))
    result = runner.invoke(app, ["data", "verify", str(data)])
    assert result.exit_code == 1
    assert "shard-00000.h5: " in result.stderr and "label" in result.stderr


def test_truncated_and_foreign_files_give_one_line_errors(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    shard = data / "shard-00002.h5"
    shard.write_bytes(shard.read_bytes()[:5000])
    with pytest.raises(UserError, match=r"shard-00002\.h5: not a readable HDF5 file"):
        open_shards(data)[7]["frames"]
    assert_one_line_error(runner.invoke(app, ["data", "inspect", str(data)]), "shard-00002.h5", "truncated")
    assert_one_line_error(
        runner.invoke(app, ["data", "preview", str(shard), "--out", str(tmp_path / "c.mp4")]),
        "shard-00002.h5",
    )

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    assert_one_line_error(
        runner.invoke(app, ["data", "preview", str(foreign), "--out", str(tmp_path / "c.mp4")]),
        "foreign.h5",
        "not an airhockey episode shard",
    )
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(UserError, match=r"notes\.h5: not a readable HDF5 file"):
        open_shards(text)
    assert_one_line_error(runner.invoke(app, ["data", "verify", str(tmp_path)]), "not a generated dataset")
    (data / "manifest.json").write_text("{not json")
    assert_one_line_error(
        runner.invoke(app, ["data", "verify", str(data)]), "manifest.json", "not valid JSON"
    )


def test_generate_user_errors_are_one_line(small_dataset, tmp_path):
    args = ["--width", "32", "--height", "32", "--policy", "scripted", "--workers", "1"]
    assert_one_line_error(
        runner.invoke(app, ["generate", str(small_dataset), "--episodes", "8", *args]), "--resume"
    )
    assert_one_line_error(
        runner.invoke(app, ["generate", str(tmp_path / "d"), "--episodes", "2", "--labels", "up", *args]),
        "labels must be one of",
    )
    assert_one_line_error(
        runner.invoke(app, ["generate", str(tmp_path / "d"), "--episodes", "2", "--policy", str(tmp_path)]),
        "policy",
    )


def test_kill_minus_9_of_the_process_group_then_resume_gives_the_uninterrupted_dataset(tmp_path):
    config = GenerateConfig(episodes=16, width=32, height=32, policy="scripted", shard_size=2)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "airhockey.cli", "generate", str(out), "--episodes", "16", "--width", "32"]
    args += ["--height", "32", "--policy", "scripted", "--shard-size", "2", "--workers", "2", "--no-progress"]
    run = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("shard-*.h5")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = list(out.glob("shard-*.h5"))
    assert 0 < len(finished) < config.num_shards, "the kill must land mid-run"

    subprocess.run([*args, "--resume"], check=True, stdout=subprocess.DEVNULL)
    generate(config, tmp_path / "whole", workers=1, progress=False)
    assert file_digests(out) == file_digests(tmp_path / "whole")
    assert runner.invoke(app, ["data", "verify", str(out)]).exit_code == 0


FAST = ["--episodes", "2", "--width", "32", "--height", "32", "--policy", "scripted", "--workers", "1"]


@pytest.mark.parametrize(
    ("bad", "fragments"),
    [
        (["--camera", "perspectiv"], ["camera_name must be one of", "perspectiv"]),
        (["--width", "40000"], ["width must be an integer in [16, 1024], got 40000"]),
        (["--height", "16385"], ["height must be an integer in [16, 1024], got 16385"]),
        (["--labels", "up"], ["labels must be one of"]),
    ],
)
def test_a_bad_generate_option_writes_nothing_and_the_corrected_command_runs(tmp_path, bad, fragments):
    out = tmp_path / "out"
    assert_one_line_error(runner.invoke(app, ["generate", str(out), *FAST, *bad]), *fragments)
    assert not out.exists()
    out.mkdir()  # an empty directory given by the user stays as it was
    assert_one_line_error(runner.invoke(app, ["generate", str(out), *FAST, *bad]), *fragments)
    assert [p.name for p in out.iterdir() if p.name[0] != "."] == []
    result = runner.invoke(app, ["generate", str(out), *FAST, "--no-progress"])
    assert result.exit_code == 0, result.output


def test_a_run_that_fails_before_its_first_episode_leaves_nothing_that_blocks_a_retry(tmp_path):
    model = tmp_path / "agent.zip"  # found and hashed before the run starts, loadable only once it has
    model.write_text("not a zip")
    (tmp_path / "agent_vecnormalize.pkl").write_text("not a pickle")
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", str(out), *FAST, "--policy", str(model)])
    assert result.exit_code == 2 and "agent.zip" in result.stderr
    assert not out.exists()
    out.mkdir()
    runner.invoke(app, ["generate", str(out), *FAST, "--policy", str(model)])
    assert [p.name for p in out.iterdir() if p.name[0] != "."] == []
    assert runner.invoke(app, ["generate", str(out), *FAST, "--resume", "--no-progress"]).exit_code == 0


def test_an_output_directory_that_cannot_be_made_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    assert_one_line_error(
        runner.invoke(app, ["generate", str(tmp_path / "file" / "out"), *FAST]), "file/out", "is a file"
    )
    assert_one_line_error(runner.invoke(app, ["generate", str(tmp_path / "file"), *FAST]), "not a directory")
    # Not writable: /proc refuses new entries even to root, for whom permission bits do not count.
    assert_one_line_error(
        runner.invoke(app, ["generate", "/proc/airhockey-out", *FAST]), "/proc/airhockey-out"
    )


def test_a_damaged_compressed_chunk_is_a_one_line_error_naming_the_shard(small_dataset, tmp_path):
    data = copy_dataset(small_dataset, tmp_path / "data")
    shard = data / "shard-00000.h5"
    with h5py.File(shard, "r") as f:
        offset = f["frames"].id.get_chunk_info(0).byte_offset  # the first 8 frames' deflate stream
    raw = bytearray(shard.read_bytes())
    raw[offset + 2 : offset + 40] = bytes(38)
    shard.write_bytes(bytes(raw))
    assert_one_line_error(
        runner.invoke(app, ["data", "preview", str(data), "--out", str(tmp_path / "c.gif")]),
        "shard-00000.h5",
        "cannot read frames",
    )
    with pytest.raises(UserError, match=r"shard-00000\.h5: cannot read frames\[0:"):
        open_shards(data).frames(0)
    assert runner.invoke(app, ["data", "verify", str(data)]).exit_code == 1


def test_resuming_a_dataset_begun_by_another_version_warns_and_records_both(tmp_path):
    import json

    import airhockey
    from airhockey.generate.manifest import MixedVersionsWarning

    config = GenerateConfig(episodes=4, width=32, height=32, policy="scripted", shard_size=2)
    out = tmp_path / "data"
    generate(config, out, workers=1, progress=False)
    (out / "shard-00001.h5").unlink()  # as if interrupted
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["package_versions"], manifest["package_version"] = ["0.1.0"], "0.1.0"
    manifest["shards"], manifest["complete"] = manifest["shards"][:1], False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(
        MixedVersionsWarning, match=rf"begun by airhockey 0\.1\.0 with airhockey {airhockey.__version__}"
    ):
        resumed = generate(config, out, workers=1, resume=True, progress=False)
    assert resumed["package_versions"] == ["0.1.0", airhockey.__version__]
    assert json.loads((out / "manifest.json").read_text())["package_versions"] == resumed["package_versions"]
    assert runner.invoke(app, ["data", "verify", str(out)]).exit_code == 0
