"""The ``airhockey`` command line: help, the env commands, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time

import imageio.v3 as iio
from typer.testing import CliRunner

from airhockey.cli import app

runner = CliRunner()


def test_help_lists_every_stage_and_is_fast_to_import():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for stage in ("env", "agent", "generate", "data", "learn", "pipeline"):
        assert stage in result.output
    # --help must not pull in the heavy stages.
    heavy = "('torch', 'stable_baselines3', 'h5py')"
    code = f"import sys, airhockey.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_env_info_prints_id_spaces_and_arguments():
    result = runner.invoke(app, ["env", "info"])
    assert result.exit_code == 0
    assert "AirHockey-v0" in result.output and "max episode steps:  150" in result.output
    assert "target_buttons" in result.output and "Box(-1.0, 1.0, (2,), float32)" in result.output


def test_env_preview_writes_a_gif_of_the_episodes(tmp_path):
    out = tmp_path / "preview.gif"
    result = runner.invoke(
        app, ["env", "preview", "--episodes", "1", "--width", "32", "--height", "32", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    steps = int(result.output.split(", ")[2].split()[0])
    assert f"({steps + 1} frames)" in result.output  # the frame after reset, then one per step
    frames = iio.imread(out)  # a GIF stores repeated frames once, so count no further
    assert frames.ndim == 4 and frames.shape[1:] == (256, 256, 3)  # upscaled 8x for players


def test_env_preview_rejects_an_unknown_video_suffix_in_one_line(tmp_path):
    result = runner.invoke(app, ["env", "preview", "--out", str(tmp_path / "x.avi")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "must end in .mp4 or .gif" in result.output


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_env_preview_checks_its_output_path_before_playing(tmp_path):
    (tmp_path / "clip.mp4").mkdir()
    (tmp_path / "file").write_text("")
    for out, why in (("clip.mp4", "is an existing directory"), ("file/clip.gif", "is a file")):
        start = time.monotonic()
        result = runner.invoke(app, ["env", "preview", "--episodes", "50", "--out", str(tmp_path / out)])
        assert_one_line_error(result, out, why)
        assert time.monotonic() - start < 5  # refused before 50 episodes are played and rendered


def test_a_frame_size_the_gl_framebuffer_cannot_hold_is_a_one_line_error(tmp_path):
    result = runner.invoke(
        app, ["env", "preview", "--episodes", "1", "--width", "16385", "--out", str(tmp_path / "p.gif")]
    )
    assert_one_line_error(result, "cannot render 16385x256 frames", "smaller frame size")
