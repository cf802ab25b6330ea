"""The compute of a pretext step, in floating-point operations, so that methods can be compared at
equal compute as well as at equal steps (a transformer step and a ConvLSTM step cost differently).

FLOPs are counted by PyTorch's ``torch.utils.flop_counter.FlopCounterMode``: the matrix products and
convolutions of one forward and backward pass (2 FLOPs per multiply-add), the operations that
dominate both backbones; element-wise operations (activations, normalisation, the optimiser) are not
counted, as in the FLOP counts of the papers this registry follows. ``budget_steps`` converts a
budget in FLOPs (``PretextConfig.flops``) into the steps it buys.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from airhockey.errors import UserError
from airhockey.learn.methods.base import PretextMethod, to_device
from airhockey.learn.nn.encoder import PretextModel

if TYPE_CHECKING:
    from airhockey.learn.config import PretextConfig


def training_step_flops(method: PretextMethod[Any], model: PretextModel, batch: Any) -> int:
    """FLOPs of one training step of ``method`` on ``batch``: the loss's forward and backward pass.

    The step runs on a copy of ``model`` with torch's random state kept, so neither the model, its
    gradients nor the run's random stream change.

    Args:
        method: the pretext method whose ``loss`` is counted.
        model: its model (on any device; its weights do not change the count).
        batch: one batch in the method's sample format, on the model's device.

    Returns:
        The FLOPs counted (an integer >= 0).
    """
    clone = copy.deepcopy(model).train()
    with torch.random.fork_rng(devices=[]), FlopCounterMode(display=False) as counter:
        loss = method.loss(clone, batch)
        loss.backward()
    return int(counter.get_total_flops())


def loader_step_flops(
    method: PretextMethod[Any], model: PretextModel, loader: DataLoader, device: torch.device
) -> int:
    """``training_step_flops`` on the first batch of ``loader`` (0 for an empty loader).

    Torch's random state (the CPU's and ``device``'s) is kept: a loader draws its workers' base
    seed from it, and a run that counts its steps' FLOPs must train as one that does not."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for batch in loader:
            return training_step_flops(method, model, to_device(batch, device))
    return 0


def budget_steps(flops: float, flops_per_step: int, what: str) -> int:
    """The optimiser steps a budget of ``flops`` FLOPs buys at ``flops_per_step`` a step:
    ``ceil(flops / flops_per_step)``, so that a budget of N steps' FLOPs is N steps.

    Raises:
        UserError: for a budget below one step's FLOPs, or steps whose FLOPs count is 0; ``what``
            names the step (e.g. the method and the batch size).
    """
    if flops_per_step <= 0:
        raise UserError(f"a training step of {what} counts no FLOPs: give a step budget (--steps) instead")
    if flops < flops_per_step:
        raise UserError(
            f"a budget of {flops:g} FLOPs is less than one training step of {what} "
            f"({flops_per_step:g} FLOPs): give at least that"
        )
    return math.ceil(flops / flops_per_step)


def synthetic_step_flops(
    methods: Sequence[str], config: PretextConfig, size: tuple[int, int]
) -> dict[str, int]:
    """Each method's FLOPs of one training step at ``config.batch_size`` on frames of ``size`` (H, W),
    counted on moving-shapes episodes written to a temporary folder: a step's tensor shapes, and so
    its FLOPs, depend on the sizes alone, so a FLOPs budget can be checked before any data exists.

    Raises:
        UserError: a method that cannot read frames of ``size``.
    """
    from airhockey.generate.config import ShapesConfig
    from airhockey.generate.shapes import generate_shapes
    from airhockey.generate.shards import open_shards
    from airhockey.learn.methods import get_method
    from airhockey.learn.pretext.trainer import sample_loader

    episodes = 2 * config.batch_size  # enough samples for a whole first batch in every method
    out = {}
    with tempfile.TemporaryDirectory(prefix="airhockey-flops-") as tmp:
        generate_shapes(ShapesConfig(episodes=episodes, length=64, width=size[1], height=size[0]), tmp)
        shards = open_shards(tmp)
        for name in methods:
            try:
                method = get_method(name)().with_image_size(size)
            except ValueError as err:
                raise UserError(f"method {name} cannot read {size[1]}x{size[0]} frames: {err}") from None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = method.build_model()
            samples = method.samples(shards, np.arange(episodes), config.seed, training=True)
            loader = sample_loader(samples, config, torch.device("cpu"), epoch=0)
            out[name] = loader_step_flops(method, model, loader, torch.device("cpu"))
    return out
