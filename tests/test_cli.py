"""The ``airhockey`` command line: help, the env commands, and one-line errors."""

from __future__ import annotations

import inspect
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
    heavy = "('torch', 'stable_baselines3', 'h5py', 'matplotlib', 'ray')"
    code = f"import sys, airhockey.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    module = subprocess.run([sys.executable, "-m", "airhockey.cli", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "pipeline" in module.stdout


def test_the_generate_shapes_and_agent_defaults_are_the_configs_defaults():
    from airhockey.agents.config import TrainConfig
    from airhockey.cli.agent import agent_train
    from airhockey.cli.data import data_shapes, generate_command
    from airhockey.generate.config import GenerateConfig, ShapesConfig

    checked = 0
    from_task = {"labels"}  # None on the command line: the --task's label set, else the config's default
    for command, config, renamed in (
        (generate_command, GenerateConfig(episodes=1, policy=None), {}),
        (data_shapes, ShapesConfig(episodes=1), {}),
        (agent_train, TrainConfig(out="run"), {"targets": "target_buttons", "progress": "progress_bar"}),
    ):
        for name, param in inspect.signature(command).parameters.items():
            field = renamed.get(name, name)
            if command is generate_command and name in from_task:
                assert param.default is None
                continue
            if param.default is not inspect.Parameter.empty and hasattr(config, field):
                expected = getattr(type(config), field, None)  # the class default (policy: None)
                assert param.default == expected, (command.__name__, name)
                checked += 1
    assert checked >= 18


def test_an_edition_keeps_its_device_unless_the_option_is_given():
    from airhockey.cli.study import benchmark_config
    from airhockey.learn.protocol.benchmark import CPU, FULL, QUICK

    full = benchmark_config(full=True)
    assert full.pretext.device == "cuda" and full.compare.training.device == "cuda"
    assert full == FULL
    cpu = benchmark_config(full=True, device="cpu")
    assert cpu.pretext.device == "cpu" and cpu.compare.training.device == "cpu"
    assert benchmark_config() == CPU and benchmark_config(quick=True) == QUICK
    overridden = benchmark_config(full=True, steps=50, seeds="4", budgets="2,all", repeats=4)
    assert overridden.pretext.steps == 50 and overridden.pretext_seeds == (4,)
    assert overridden.compare.budgets == (2, None) and overridden.compare.repeats == 4
    assert overridden.compare.training == FULL.compare.training  # cuda, untouched
    assert benchmark_config(methods="next_frame,sorting").methods == ("next_frame", "sorting")


def test_a_pipeline_edition_applies_unless_an_option_is_given():
    from airhockey.cli.study import pipeline_config
    from airhockey.learn.methods import DEFAULT_METHOD
    from airhockey.learn.protocol.pipeline import FULL, QUICK

    assert pipeline_config() == FULL and pipeline_config(quick=True) == QUICK
    assert FULL.method.name == DEFAULT_METHOD
    config = pipeline_config(quick=True, policy="scripted", seed=3, device="cuda", settings=["frames_in=2"])
    assert config.data.policy == "scripted" and config.data.seed == config.compare.seed == 3
    assert config.pretext.device == config.compare.training.device == "cuda"
    assert config.method.name == DEFAULT_METHOD and config.method.settings == ("frames_in=2",)


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


def test_agent_eval_refuses_the_left_right_agent_on_five_targets_in_one_line():
    args = ["agent", "eval", "--policy", "bundled", "--targets", "all", "--episodes", "1"]
    result = runner.invoke(app, args)
    assert_one_line_error(result, "'bundled' was trained for target buttons 'leftright'", "bundled-all")
    result = runner.invoke(app, ["agent", "eval", "--targets", "all", "--episodes", "2"])
    assert result.exit_code == 0 and "policy:          bundled-all" in result.output


def test_env_preview_writes_frames_of_the_size_asked_when_high_enough(tmp_path):
    out = tmp_path / "preview.gif"
    args = ["env", "preview", "--episodes", "1", "--width", "256", "--height", "256", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert iio.imread(out).shape[1:] == (256, 256, 3)  # not upscaled to 512x512
