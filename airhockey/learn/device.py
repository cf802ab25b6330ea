"""The one device check of the learning stage."""

from __future__ import annotations

import torch

from airhockey.errors import UserError


def check_device(device: str) -> torch.device:
    """The torch device named by ``device``, checked to exist here.

    Raises:
        UserError: for a CUDA device on a machine without one, or a name torch does not know.
    """
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU here: use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(
            f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return dev
