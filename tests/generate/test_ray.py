"""Generation on Ray: the local backend's files byte for byte, resume across backends, a worker
killed mid-shard, the driver killed with -9, and one-line errors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from airhockey.backends import Backend
from airhockey.cli import app
from airhockey.generate import GenerateConfig, generate, verify_dataset
from tests.generate.helpers import SMALL, file_digests, running_ray_tasks
from tests.generate.test_data_cli import assert_one_line_error
from tests.test_backends import closed_port

RAY = Backend("ray")
SHARD_TASK = "_play_shard_to_bytes"
"""The Ray task that plays one shard (its worker process is titled ``ray::<this>`` while it runs)."""
runner = CliRunner()


def test_the_ray_backend_writes_the_local_backends_files_byte_for_byte(local_ray, small_dataset, tmp_path):
    manifest = generate(SMALL, tmp_path / "ray", backend=RAY, progress=False)
    assert manifest["complete"]
    assert file_digests(tmp_path / "ray") == file_digests(small_dataset)
    assert not list((tmp_path / "ray").glob(".*.partial"))


def test_resume_completes_a_dataset_begun_on_the_other_backend(local_ray, small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)  # written by the local backend
    (data / "shard-00000.h5").unlink()
    (data / "shard-00002.h5").write_bytes(b"half a shard")
    generate(SMALL, data, backend=RAY, progress=False, resume=True)
    assert file_digests(data) == file_digests(small_dataset)

    (data / "shard-00002.h5").unlink()  # written by Ray, redone locally
    generate(SMALL, data, workers=1, progress=False, resume=True)
    assert file_digests(data) == file_digests(small_dataset)


def test_a_worker_killed_mid_shard_is_rerun_by_ray_and_the_dataset_is_unchanged(local_ray, tmp_path):
    config = replace(SMALL, episodes=12, shard_size=4)
    with ThreadPoolExecutor(1) as driver:
        run = driver.submit(generate, config, tmp_path / "ray", backend=RAY, progress=False)
        killed = None
        while killed is None and not run.done():
            for pid in running_ray_tasks(SHARD_TASK):
                os.kill(pid, signal.SIGKILL)  # a worker process, in the middle of playing a shard
                killed = pid
                break
            time.sleep(0.005)
        run.result()
    assert killed is not None, "the run ended before a worker could be killed"
    assert not os.path.exists(f"/proc/{killed}")
    generate(config, tmp_path / "local", workers=1, progress=False)
    assert file_digests(tmp_path / "ray") == file_digests(tmp_path / "local")
    assert verify_dataset(tmp_path / "ray").ok


def test_the_driver_killed_with_minus_9_then_resume_gives_the_uninterrupted_dataset(local_ray, tmp_path):
    config = GenerateConfig(episodes=16, width=32, height=32, policy="scripted", shard_size=2)  # as below
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "airhockey.cli", "generate", str(out), "--episodes", "16", "--width", "32"]
    args += ["--height", "32", "--policy", "scripted", "--shard-size", "2", "--no-progress"]
    args += ["--backend", "ray", "--ray-address", local_ray]  # a second driver on this test's Ray instance
    driver = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("shard-*.h5")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    finished = list(out.glob("shard-*.h5"))
    assert 0 < len(finished) < config.num_shards, "the kill must land mid-run"

    generate(config, out, workers=1, progress=False, resume=True)  # a Ray run resumed locally
    generate(config, tmp_path / "whole", workers=1, progress=False)
    assert file_digests(out) == file_digests(tmp_path / "whole")


def test_generate_and_verify_through_the_cli_on_ray(local_ray, tmp_path):
    out = tmp_path / "data"
    args = ["generate", str(out), "--episodes", "4", "--width", "32", "--height", "32", "--shard-size", "2"]
    args += ["--policy", "scripted", "--backend", "ray", "--ray-cpus-per-task", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 episodes (left 2, right 2)" in result.stdout and "in 2 shards" in result.stdout
    result = runner.invoke(app, ["data", "verify", str(out)])
    assert result.exit_code == 0 and "4 episodes verified" in result.stdout


def test_ray_errors_are_one_line_and_write_nothing(monkeypatch, tmp_path):
    ray = pytest.importorskip("ray")
    out = tmp_path / "data"
    args = ["generate", str(out), "--episodes", "2", "--width", "32", "--height", "32"]
    args += ["--policy", "scripted"]
    assert_one_line_error(
        runner.invoke(app, [*args, "--backend", "ray", "--workers", "2"]), "--ray-cpus-per-task"
    )
    assert_one_line_error(runner.invoke(app, [*args, "--ray-address", "auto"]), "--backend ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a process that has not joined one
    address = f"127.0.0.1:{closed_port()}"
    assert_one_line_error(
        runner.invoke(app, [*args, "--backend", "ray", "--ray-address", address]),
        f"cannot reach the Ray cluster at --ray-address {address}",
    )
    monkeypatch.setitem(sys.modules, "ray", None)
    assert_one_line_error(runner.invoke(app, [*args, "--backend", "ray"]), 'pip install -e ".[ray]"')
    assert not out.exists()


def test_without_an_address_generate_starts_its_own_ray_instance(tmp_path):
    pytest.importorskip("ray")
    args = [sys.executable, "-m", "airhockey.cli", "generate", str(tmp_path / "data"), "--episodes", "8"]
    args += ["--width", "32", "--height", "32", "--policy", "scripted", "--shard-size", "3", "--no-progress"]
    # A fresh process: not joined to this module's instance, with RAY_ADDRESS unset, as a user's shell is.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run([*args, "--backend", "ray"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    config = GenerateConfig(episodes=8, width=32, height=32, policy="scripted", shard_size=3)
    generate(config, tmp_path / "local", workers=1, progress=False)
    assert file_digests(tmp_path / "data") == file_digests(tmp_path / "local")
