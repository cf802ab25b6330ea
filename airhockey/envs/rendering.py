"""Rendering the table's frames: one offscreen renderer (one GL context) per thread and frame size,
shared by every env of the process.

Envs stepped side by side then render without switching GL contexts, which costs about as much as
rendering a 64x64 frame. Each env draws its own model and data into the shared scene
(``mujoco.mjv_updateScene``) and reads the frame with ``FrameRenderer.frame``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from numpy.typing import NDArray

import airhockey
from airhockey.errors import UserError

if TYPE_CHECKING:
    from airhockey.envs.nuisances import EpisodeNuisances


class FrameRenderer(mujoco.Renderer):
    """``mujoco.Renderer`` with a leaner path for frames, shared by the envs of one thread.

    Its GL context belongs to the thread that made it: a context stays current in its thread
    (even after the thread ends, with Mesa's EGL), and making it current in another one fails
    with ``EGL_BAD_ACCESS``. So each thread renders with its own renderer, and only the thread
    that made one frees it.

    ``Renderer.render`` makes its GL context current before every frame and flips each frame into
    a new array; at 64x64 on a CPU (llvmpipe), making an already current context current again
    costs about 5% of a frame. ``frame`` makes the context current only when another one is, reads
    the pixels into a reused buffer and flips them straight into the caller's array. The pixels
    are ``Renderer.render``'s (a test checks).
    """

    def __init__(self, model: mujoco.MjModel, height: int, width: int) -> None:
        super().__init__(model, height, width, max_geom=1000)
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)
        self._is_current = _current_context_check(self._gl_context)
        self.thread = threading.current_thread()
        self.users = 0

    def abandon(self) -> None:
        """Gives up a renderer of another thread without freeing its GL objects.

        Freeing needs its context current here, which its thread prevents. Nor may the objects be
        garbage collected: ``MjrContext`` frees its textures and framebuffers by their numbers in
        whatever context is current, which would delete this thread's own. They are kept until
        the process exits.
        """
        _ABANDONED.append((self._gl_context, self._mjr_context))
        self._gl_context = self._mjr_context = None

    def draw(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        option: mujoco.MjvOption,
        camera: mujoco.MjvCamera,
        out: NDArray[np.uint8] | None = None,
        nuisances: EpisodeNuisances | None = None,
    ) -> NDArray[np.uint8]:
        """The frame of ``model`` and ``data`` seen from ``camera``, as ``frame`` returns it.

        With ``nuisances``, the scene is changed by their ``dress`` before it is drawn, and their
        pixel noise is added to the frame.
        """
        mujoco.mjv_updateScene(model, data, option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        if nuisances is None:
            return self.frame(out)
        nuisances.dress(self.scene)
        frame = self.frame(out)
        nuisances.add_noise(frame)
        return frame

    def frame(self, out: NDArray[np.uint8] | None = None) -> NDArray[np.uint8]:
        """The scene as (height, width, 3) uint8 pixels, written into ``out`` when given."""
        if self._gl_context is None:  # a backend without an OpenGL context (no flip needed)
            return self.render(out=out)
        if not self._is_current():
            self._gl_context.make_current()
        mujoco.mjr_render(self._rect, self._scene, self._mjr_context)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._mjr_context)
        flipped = self._pixels[::-1]  # OpenGL's rows run bottom up
        if out is None:
            return flipped.copy()
        np.copyto(out, flipped)
        return out


def _current_context_check(gl_context: Any) -> Callable[[], bool]:
    """A check that MuJoCo's ``gl_context`` is this thread's current GL context, as its own
    ``as_current`` checks; with EGL through a bare ctypes call (PyOpenGL's wrapper costs about
    ten times more). Always False for other backends: their context is made current every frame.
    """
    handle = getattr(gl_context, "_context", None)
    if os.environ.get("MUJOCO_GL", "").lower() != "egl" or handle is None:
        return lambda: False
    from OpenGL.platform import PLATFORM  # PyOpenGL: only for MuJoCo's EGL backend

    try:
        # A handle of its own on the library PyOpenGL loaded, so that PyOpenGL's functions keep
        # their types.
        get_current = ctypes.CDLL(PLATFORM.EGL._name).eglGetCurrentContext
        address = int(handle.address)
    except (AttributeError, OSError, TypeError):  # not the EGL setup MuJoCo makes: always make current
        return lambda: False
    get_current.restype, get_current.argtypes = ctypes.c_void_p, []
    return lambda: get_current() == address


# The renderers by thread and frame size. Keyed by the thread object, not its ident: a new thread
# may reuse a finished one's ident, but not the finished one's context.
_RENDERERS: dict[tuple[threading.Thread, int, int], FrameRenderer] = {}
_ABANDONED: list[tuple[Any, Any]] = []
"""GL and MuJoCo contexts of renderers given up by another thread than their own (see ``abandon``)."""


def acquire_renderer(model: mujoco.MjModel, height: int, width: int) -> FrameRenderer:
    """This thread's renderer of ``height`` x ``width`` frames, made on first use.

    Raises:
        UserError: when no OpenGL framebuffer of that size can be made here (a size beyond the
            driver's limit, or no working backend), naming the variable to set.
    """
    key = (threading.current_thread(), height, width)
    if key not in _RENDERERS:
        try:
            _RENDERERS[key] = FrameRenderer(model, height, width)
        # MuJoCo, PyOpenGL and the GL backends each raise their own types here (FatalError,
        # ImportError, RuntimeError, EGLError, ...), all meaning this renderer cannot exist.
        except Exception as err:
            raise UserError(_renderer_failure(height, width, err)) from None
    _RENDERERS[key].users += 1
    return _RENDERERS[key]


def _renderer_failure(height: int, width: int, err: Exception) -> str:
    """One line saying why a renderer could not be made, and what to change."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    backend = os.environ.get("MUJOCO_GL", "glfw (MuJoCo's default)")
    if "framebuffer" in reason.lower():
        hint = "choose a smaller frame size"
    else:
        hint = airhockey.GL.problem or airhockey.gl.SET_BACKEND_HINT
    return f"cannot render {width}x{height} frames with MUJOCO_GL={backend} ({reason}): {hint}"


def release_renderer(renderer: FrameRenderer) -> None:
    """Gives back an env's use of ``renderer``; the last user frees it (or abandons it, from
    another thread than its own)."""
    renderer.users -= 1
    if renderer.users == 0:
        if renderer.thread is threading.current_thread():
            renderer.close()
        else:
            renderer.abandon()
        for key in [k for k, r in _RENDERERS.items() if r is renderer]:
            del _RENDERERS[key]


def render_modes() -> list[str]:
    """``"rgb_array"`` always; ``"human"`` only where a display opens (see ``airhockey.gl``)."""
    return ["human", "rgb_array"] if airhockey.GL.display else ["rgb_array"]
