"""The registry of pretext methods: names -> method classes, imported only when asked for.

    from airhockey.learn.methods import get_method, method_names
    method = get_method("next_frame")()            # its default config
    method = get_method("next_frame").from_dict({...})

Each method is one module of this package on ``methods.base.PretextMethod`` and one line in
``METHODS`` (``"name": "module:Class"``); ``register`` adds one from elsewhere (a test, a plug-in)
at run time. Modules are imported lazily, so that ``airhockey --help`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from airhockey.errors import UserError

if TYPE_CHECKING:
    from airhockey.learn.methods.base import PretextMethod

METHODS: dict[str, str | type[PretextMethod]] = {
    "next_frame": "airhockey.learn.methods.next_frame:NextFrame",
    "lvln": "airhockey.learn.methods.lvln:LVLN",
    "composite": "airhockey.learn.methods.composite:Composite",
    "order_verification": "airhockey.learn.methods.order_verification:OrderVerification",
    "sorting": "airhockey.learn.methods.sorting:Sorting",
    "odd_one_out": "airhockey.learn.methods.odd_one_out:OddOneOut",
    "clip_order": "airhockey.learn.methods.clip_order:ClipOrder",
    "skip_clip": "airhockey.learn.methods.skip_clip:SkipClip",
    "videomae": "airhockey.learn.methods.videomae:VideoMAE",
    "vjepa": "airhockey.learn.methods.vjepa:VJEPA",
    "contrastive": "airhockey.learn.methods.contrastive:Contrastive",
}
"""Registered methods: a name, and the class or where to import it from (``module:Class``)."""
FAMILIES: dict[str, tuple[str, ...]] = {
    "seeds": (
        "next_frame",
        "lvln",
        "composite",
        "order_verification",
        "sorting",
        "odd_one_out",
        "clip_order",
        "skip_clip",
    ),
    "current": ("videomae", "vjepa", "contrastive"),
}
"""Method families the leaderboard compares as families: 'seeds', the methods of the seed papers
(prediction and reconstruction, frame and clip order: 2015-2021), and 'current', the families that
lead video self-supervision today (masked video modelling, latent prediction, contrastive clips:
2021-2024)."""
DEFAULT_METHOD = "next_frame"
"""The method a pretext run or a pipeline trains when none is named."""


def register(method: type[PretextMethod], name: str | None = None) -> type[PretextMethod]:
    """Adds a method class under ``name`` (default: its ``name`` attribute); usable as a decorator.

    Raises:
        ValueError: when another method already has that name.
    """
    key = name or method.name
    existing = METHODS.get(key)
    if existing is not None and existing is not method and get_method(key) is not method:
        raise ValueError(f"a method named {key!r} is already registered")
    METHODS[key] = method
    return method


def unregister(name: str) -> None:
    """Removes a method added with ``register`` (tests clean up with it)."""
    METHODS.pop(name, None)


def method_names() -> list[str]:
    """The registered names, in registration order."""
    return list(METHODS)


def get_method(name: str) -> type[PretextMethod]:
    """The method class registered as ``name``, imported on first use.

    Raises:
        UserError: for an unknown name; the message lists the registered ones.
    """
    entry = METHODS.get(name)
    if entry is None:
        raise UserError(f"unknown method {name!r}; registered methods: {', '.join(METHODS)}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        METHODS[name] = entry
    return entry
