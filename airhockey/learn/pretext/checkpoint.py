"""Checkpoint files of the learning stage: one dict per file, holding what rebuilds the model.

A pretext run folder holds ``last.pt`` (written after every validation, for ``--resume``) and
``best.pt`` (the best validation by the method's selection metric, what later stages load). Each
file is a dict with at least ``format_version``, ``kind`` and ``model`` (the state dict). A pretext
checkpoint adds ``method`` (the registry name), ``method_config`` and ``encoder_config`` (plain
dicts of the config dataclasses) and ``encoder`` (the encoder's own state dict, which classifiers
load); a classifier checkpoint adds ``model_config``; ``last.pt`` adds optimizer and progress.
Format 1 (before the method registry) is refused with a message that says to retrain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import airhockey
from airhockey.errors import UserError
from airhockey.writing import atomic_file

FORMAT_VERSION = 2
KIND_PRETEXT = "pretext"
"""The ``kind`` of pretext runs' checkpoints."""
KIND_CLASSIFIER = "classifier"
"""The ``kind`` of classifier checkpoints."""
BEST = "best.pt"
LAST = "last.pt"

FIELDS: dict[str, dict[str, type]] = {
    KIND_PRETEXT: {
        "method": str,
        "method_config": dict,
        "encoder_config": dict,
        "train_config": dict,
        "model": dict,
        "encoder": dict,
    },
    KIND_CLASSIFIER: {"model_config": dict, "model": dict},
}
"""The fields every checkpoint of a kind holds, with their types (``last.pt`` holds more)."""
OPTIONAL_FIELDS: dict[str, type] = {"step": int, "optimizer": dict, "progress": dict, "baselines": dict}
"""Fields some checkpoints hold, with their types where present."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` to ``path`` atomically (``<name>.tmp``, then a rename; never through a link).

    ``format_version`` and ``package_version`` are added; an interrupted write never leaves a
    truncated checkpoint behind.

    Raises:
        UserError: when the disk is full (``path`` is left as it was, the temporary file removed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save({"format_version": FORMAT_VERSION, "package_version": airhockey.__version__, **payload}, f)
    return path


def resolve_checkpoint(run_or_file: str | Path, name: str = BEST) -> Path:
    """The checkpoint file meant by a run folder (its ``name``) or by a file path.

    Raises:
        UserError: when there is no such file.
    """
    path = Path(run_or_file)
    if path.is_dir():
        path = path / name
    if not path.is_file():
        raise UserError(
            f"no checkpoint at {str(path)!r}: give a run folder or a .pt file written by training"
        )
    return path


def load_checkpoint(run_or_file: str | Path, kind: str, name: str = BEST) -> dict[str, Any]:
    """Loads a checkpoint dict (tensors on the CPU) and checks its format and kind.

    Args:
        run_or_file: a run folder (then its file ``name`` is read) or a checkpoint file.
        kind: the kind of run expected, e.g. ``"pretext"``.
        name: the file to read inside a run folder.

    Raises:
        UserError: when the file is missing, unreadable, of another format version or another
            kind, or lacks a field of its kind (``FIELDS``) or holds one of the wrong type.
    """
    path = resolve_checkpoint(run_or_file, name)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises a variety of types for a corrupt or foreign file
        reason = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        if "weights_only" in reason.lower() or "unpickler" in reason.lower():
            reason = "it is damaged, or holds objects a weights-only load refuses"
        raise UserError(
            f"cannot read checkpoint {str(path)!r}: {reason[:300]}: train the run again or restore the file"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format_version") != FORMAT_VERSION:
        found = ckpt.get("format_version") if isinstance(ckpt, dict) else None
        hint = ": it was written before the method registry, train it again" if found == 1 else ""
        raise UserError(f"{str(path)!r} is not a checkpoint of format version {FORMAT_VERSION}{hint}")
    if ckpt.get("kind") != kind:
        raise UserError(f"{str(path)!r} holds a {ckpt.get('kind')!r} model, expected a {kind!r} one")
    expected = {**FIELDS.get(kind, {}), **{k: t for k, t in OPTIONAL_FIELDS.items() if k in ckpt}}
    for field, kind_of in expected.items():
        value = ckpt.get(field)
        if not isinstance(value, kind_of) or (kind_of is int and isinstance(value, bool)):
            found = "missing" if field not in ckpt else f"a {type(value).__name__}"
            raise UserError(
                f"{str(path)!r}: field {field!r} is {found}, not a {kind_of.__name__}: a damaged checkpoint, "
                "restore it or train again"
            )
    return ckpt
