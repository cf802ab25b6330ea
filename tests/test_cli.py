"""The ``airhockey`` command line: help, the env commands, and one-line errors."""

from __future__ import annotations

import subprocess
import sys

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
