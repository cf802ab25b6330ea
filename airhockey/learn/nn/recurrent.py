"""Stacked convolutional recurrent layers run over a sequence: what ``ConvLSTM`` and ``ConvGRU`` share.

A cell keeps its state's spatial layout (feature maps ``(B, C, H, W)``) and splits its gates'
convolution into an input half (``input_conv``) and a hidden half, so that a stack can apply the
input half to every time step of a known sequence in one call and run only the hidden half step by
step.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

PER_STEP_BYTES = 2**20
"""Size of the input gates of all time steps from which a ``RecurrentStack`` applies its input
convolutions one step at a time instead of in one batched call (1 MiB, of the order of a core's L2 cache)."""


class RecurrentStack(nn.Module, ABC):
    """Stacked recurrent cells run over a sequence; each layer's hidden state is the next one's input.

    The layers run one after another over the whole sequence (layer-major); the result equals the
    step-by-step order. Each layer's input convolution takes all time steps in one call while the
    input gates of all steps are small (under ``PER_STEP_BYTES``), and one step at a time above
    that, where one call's working set outgrows the CPU's cache and costs more than the separate
    calls (a classifier's batch of k-frame windows). Both layouts give the same outputs; their
    gradients differ in float rounding only (the input convolution's weight gradient is summed
    in another order).

    Subclasses set ``cell_class``, whose instances have ``input_conv`` (the input's convolution of
    every gate) and ``update(input_gates, state) -> state``, and say which part of a state is the
    hidden map (``hidden``).

    Args:
        in_channels: channels of the input frames or feature maps.
        hidden_channels: the hidden channels of each layer, bottom first.
        kernel_size: side of the gate convolutions.
    """

    cell_class: ClassVar[type[nn.Module]]

    def __init__(self, in_channels: int, hidden_channels: tuple[int, ...], kernel_size: int = 3) -> None:
        super().__init__()
        channels = (in_channels, *hidden_channels)
        self.cells = nn.ModuleList(
            self.cell_class(c_in, c_out, kernel_size) for c_in, c_out in itertools.pairwise(channels)
        )
        self.out_channels = channels[-1]

    @staticmethod
    @abstractmethod
    def hidden(state: Any) -> Tensor:
        """A cell state's hidden map (B, C, H, W): the next layer's input and the stack's output."""

    def forward(self, x: Tensor, states: list[Any] | None = None) -> tuple[Tensor, list[Any]]:
        """Runs the stack over a sequence.

        Args:
            x: (B, T, C_in, H, W).
            states: one state per layer to continue from, or None to start from zeros.

        Returns:
            The top layer's hidden states (B, T, C_top, H, W) and the new state of every layer.
        """
        b, t = x.shape[:2]
        new_states = []
        for k, cell in enumerate(self.cells):
            gate_bytes = b * t * cell.input_conv.out_channels * x.shape[-2] * x.shape[-1] * x.element_size()
            if gate_bytes < PER_STEP_BYTES:
                input_gates = cell.input_conv(x.flatten(0, 1)).unflatten(0, (b, t)).unbind(1)
            else:
                input_gates = (cell.input_conv(step) for step in x.unbind(1))
            state = None if states is None else states[k]
            hs = []
            # unbind, not indexing: indexing's backward writes a full-size zero tensor per step.
            for gates in input_gates:  # each (B, G*C, H, W)
                state = cell.update(gates, state)
                hs.append(self.hidden(state))
            x = torch.stack(hs, dim=1)  # (B, T, C_k, H, W)
            new_states.append(state)
        return x, new_states
