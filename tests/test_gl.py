"""Choosing the OpenGL backend: a display that does not open, missing libraries, the user's choice."""

from __future__ import annotations

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np

import airhockey
from airhockey.gl import choose_backend

STALE_DISPLAY = ":87"  # no X server runs there (an ssh session or container that inherited it)


def test_a_stale_display_falls_back_to_headless_rendering_and_hides_human_mode(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env["DISPLAY"] = STALE_DISPLAY
    frame_file = tmp_path / "frame.npy"
    code = (
        "import sys, numpy as np, gymnasium as gym, airhockey\n"
        "e = gym.make('AirHockey-v0', render_mode='rgb_array'); e.reset(seed=2)\n"
        "np.save(sys.argv[1], e.render())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(frame_file)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    here = gym.make(airhockey.ENV_ID, render_mode="rgb_array")
    here.reset(seed=2)
    np.testing.assert_array_equal(np.load(frame_file), here.render())
    here.close()

    info = subprocess.run(
        [sys.executable, "-m", "airhockey.cli", "env", "info"], env=env, capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    assert "render modes:       ['rgb_array']" in info.stdout


def test_without_a_display_or_a_headless_library_the_problem_names_the_variable_to_set():
    none = {"egl": ("libnot-egl.so.1",), "osmesa": ("libnot-osmesa.so.8",)}
    choice = choose_backend({"DISPLAY": STALE_DISPLAY}, libraries=none)
    assert (choice.backend, choice.display) == (None, False)
    assert f"DISPLAY='{STALE_DISPLAY}' does not open" in choice.problem and "set MUJOCO_GL" in choice.problem
    assert choose_backend({}, libraries={"missing": ("libnot.so",), "egl": ("libEGL.so.1",)}).backend == "egl"


def test_the_users_backend_is_kept_and_human_mode_needs_glfw_on_an_open_display():
    assert choose_backend({"MUJOCO_GL": "osmesa", "DISPLAY": STALE_DISPLAY}) == (
        choose_backend({"MUJOCO_GL": "osmesa"})
    )
    chosen = choose_backend({"MUJOCO_GL": "glfw", "DISPLAY": STALE_DISPLAY})
    assert (chosen.backend, chosen.display) == ("glfw", False)
