"""airhockey: an air-hockey table in MuJoCo, an agent that plays it, and video datasets of its play.

Importing the package registers ``AirHockey-v0`` with Gymnasium and chooses MuJoCo's OpenGL
backend (``airhockey.gl``): GLFW where a display opens, else EGL, else OSMesa, setting
``MUJOCO_GL``, ``PYOPENGL_PLATFORM`` and llvmpipe's inline rendering (``LP_NUM_THREADS=0``) unless
they are already set. This must happen before MuJoCo's renderer is first imported, so import
``airhockey`` before ``mujoco`` in headless scripts.
"""

from __future__ import annotations

import os

from airhockey import gl

__version__ = "0.2.0"

ENV_ID = "AirHockey-v0"

GL = gl.choose_backend(os.environ)
"""The OpenGL setup of this process, chosen at import."""
gl.apply(GL)


def _register() -> None:
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID,
            entry_point="airhockey.envs.airhockey_v0:AirHockeyEnv",
            max_episode_steps=150,
        )


_register()
