"""airhockey: an air-hockey table in MuJoCo, an agent that plays it, and video datasets of its play.

Importing the package registers ``AirHockey-v0`` with Gymnasium. On a machine with no display it
also selects MuJoCo's EGL backend (``MUJOCO_GL=egl``) and llvmpipe's inline rendering
(``LP_NUM_THREADS=0``), unless those variables are already set; this must happen before MuJoCo's
renderer is first imported, so import ``airhockey`` before ``mujoco`` in headless scripts.
"""

from __future__ import annotations

import os
import sys

__version__ = "0.2.0"

ENV_ID = "AirHockey-v0"


def _choose_headless_gl() -> None:
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless and "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    if os.environ.get("MUJOCO_GL") == "egl":
        # Mesa's llvmpipe otherwise spawns render threads, which costs more than it gives on the
        # small frames rendered here; parallelism comes from worker processes instead.
        os.environ.setdefault("LP_NUM_THREADS", "0")


_choose_headless_gl()


def _register() -> None:
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="airhockey.envs.airhockey_v0:AirHockeyEnv",
            max_episode_steps=150,
        )


_register()
