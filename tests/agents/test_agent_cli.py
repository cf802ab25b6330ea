"""The agent commands: train, eval and record through the CLI, and their one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner

from airhockey.cli import app

runner = CliRunner()


def test_train_then_eval_then_record(tmp_path):
    run = tmp_path / "run"
    tiny = ["--hp", "n_envs=2", "--hp", "n_steps=32", "--hp", "batch_size=32"]
    args = ["agent", "train", "--out", str(run), "--timesteps", "64", "--workers", "1", "--seed", "3"]
    result = runner.invoke(app, [*args, *tiny, "--eval-every", "0", "--eval-episodes", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "trained 64 steps" in result.stdout and (run / "model.zip").is_file()
    assert f"--policy {run}/best" in result.stdout and (run / "best" / "model.zip").is_file()

    result = runner.invoke(app, ["agent", "eval", "--policy", str(run), "--episodes", "4", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "95% CI" in result.stdout and "seeds 5-8" in result.stdout and "target \\ hit" in result.stdout

    video = tmp_path / "agent.mp4"
    args = ["agent", "record", "--policy", str(run / "model.zip"), "--out", str(video), "--episodes", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert video.stat().st_size > 0


def assert_cli_error(args, match):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.stderr


def test_missing_and_corrupt_policies_print_one_error_line(tmp_path):
    assert_cli_error(["agent", "eval", "--policy", str(tmp_path / "none.zip")], "does not exist")
    corrupt = tmp_path / "bad.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "bad_vecnormalize.pkl").write_bytes(b"junk")
    assert_cli_error(["agent", "eval", "--policy", str(corrupt)], "is not a stable-baselines3 PPO model zip")
    args = ["env", "preview", "--policy", str(corrupt), "--out", str(tmp_path / "p.gif")]
    assert_cli_error(args, "is not a stable-baselines3 PPO model zip")


def test_bad_training_options_print_one_error_line(tmp_path):
    assert_cli_error(
        ["agent", "train", "--out", str(tmp_path / "r"), "--hp", "n_step=3"], "unknown hyperparameter"
    )
    assert_cli_error(
        ["agent", "train", "--out", str(tmp_path / "r"), "--targets", "middle"], "target_buttons"
    )
    assert_cli_error(
        ["agent", "train", "--out", str(tmp_path / "r"), "--hp", "net_arch=[128,"],
        "hyperparameter override 'net_arch=[128,': not valid YAML",
    )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("")
    assert_cli_error(["agent", "train", "--out", str(tmp_path / "busy")], "pass --resume")
