"""Choosing MuJoCo's OpenGL backend before MuJoCo is imported: a display that opens, else EGL, else OSMesa.

MuJoCo reads ``MUJOCO_GL`` once, when its renderer is first imported, and PyOpenGL reads
``PYOPENGL_PLATFORM`` once, so the choice is made when ``airhockey`` is imported. A ``DISPLAY``
variable alone proves nothing: an ssh session or a container often inherits one whose X server is
gone, and GLFW then fails on every frame. So the display is opened (with Xlib, about a
millisecond), and where none opens the first headless backend whose library loads is chosen.
This module imports nothing heavy: ``import airhockey`` must stay instant.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HEADLESS_LIBRARIES: dict[str, tuple[str, ...]] = {
    "egl": ("libEGL.so.1", "libEGL.so"),
    "osmesa": ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"),
}
"""Headless ``MUJOCO_GL`` backends in order of preference, each with the library it needs."""

SET_BACKEND_HINT = (
    "set MUJOCO_GL to a backend that works here: egl or osmesa (install Mesa's libEGL or libOSMesa), "
    "or glfw with a DISPLAY whose X server runs"
)


@dataclass(frozen=True)
class GLChoice:
    """The rendering setup this process uses."""

    backend: str | None
    """The value for ``MUJOCO_GL``; None leaves MuJoCo's default (GLFW, on the display)."""
    display: bool
    """Whether windows can be shown (``render_mode="human"``)."""
    problem: str | None = None
    """Why no backend can work, naming the variable to set; None when one was found."""


def display_opens(environ: Mapping[str, str]) -> bool:
    """Whether the display that ``environ`` names can be opened: a Wayland socket that exists, or
    an X display that Xlib connects to."""
    wayland = environ.get("WAYLAND_DISPLAY")
    if wayland and (Path(environ.get("XDG_RUNTIME_DIR", "/")) / wayland).exists():
        return True
    display = environ.get("DISPLAY")
    if not display:
        return False
    try:
        xlib = ctypes.CDLL("libX11.so.6")
    except OSError:  # no Xlib: GLFW could not open a window either
        return False
    xlib.XOpenDisplay.restype, xlib.XOpenDisplay.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(display.encode())
    if not handle:
        return False
    xlib.XCloseDisplay(handle)
    return True


def _loads(names: tuple[str, ...]) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def choose_backend(
    environ: Mapping[str, str], libraries: Mapping[str, tuple[str, ...]] = HEADLESS_LIBRARIES
) -> GLChoice:
    """The backend for this process: the user's ``MUJOCO_GL`` if set, else GLFW where a display
    opens, else the first of ``libraries`` (EGL, then OSMesa) whose library loads.

    Args:
        environ: the environment variables (``os.environ``).
        libraries: candidate headless backends, in order, with the shared libraries each needs.
    """
    if not sys.platform.startswith("linux"):  # macOS and Windows: MuJoCo's own default works
        return GLChoice(environ.get("MUJOCO_GL"), True)
    display = display_opens(environ)
    if "MUJOCO_GL" in environ:
        backend = environ["MUJOCO_GL"]
        return GLChoice(backend, display and backend.lower() == "glfw")
    if display:
        return GLChoice(None, True)
    for backend, names in libraries.items():
        if _loads(names):
            return GLChoice(backend, False)
    named = environ.get("DISPLAY")
    found = f"DISPLAY={named!r} does not open" if named else "no display is set"
    return GLChoice(None, False, f"{found} and no headless OpenGL library loads: {SET_BACKEND_HINT}")


def apply(choice: GLChoice, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Sets the variables that MuJoCo and PyOpenGL read for ``choice`` (those the user left unset)."""
    if choice.backend is None:
        return
    environ.setdefault("MUJOCO_GL", choice.backend)
    if choice.backend in HEADLESS_LIBRARIES:
        environ.setdefault("PYOPENGL_PLATFORM", choice.backend)
    if choice.backend in ("egl", "osmesa"):
        # Mesa's llvmpipe otherwise spawns render threads, which costs more than it gives on the
        # small frames rendered here; parallelism comes from worker processes instead.
        environ.setdefault("LP_NUM_THREADS", "0")
