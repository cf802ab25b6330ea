"""The convolutional LSTM (Shi et al. 2015): a cell, and a stack of cells run over a sequence.

In a ConvLSTM the input, forget and output gates and the candidate cell state are computed by
convolutions of the input and of the previous hidden state, so the state keeps its spatial layout:
``h`` and ``c`` are feature maps ``(B, C, H, W)``, not vectors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]
"""A layer's ``(h, c)``: hidden state and cell state, each ``(B, C_hidden, H, W)``."""


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer.

    ``conv([x, h])`` is computed as ``input_conv(x) + hidden_conv(h)`` (the same linear map), so that
    the input half can be applied to all time steps of a known sequence in one batched call, and only
    the hidden half runs step by step. There are no peephole terms (Shi et al. have ``W_c * c``); the
    public ConvLSTM code that seed 000 adapts has none either.

    Args:
        in_channels: channels of the input ``x``.
        hidden_channels: channels of ``h`` and ``c``.
        kernel_size: side of the square gate convolutions (odd, "same" padding).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(in_channels, 4 * hidden_channels, kernel_size, padding=pad)
        self.hidden_conv = nn.Conv2d(
            hidden_channels, 4 * hidden_channels, kernel_size, padding=pad, bias=False
        )
        with torch.no_grad():
            # Forget-gate bias 1: the cell starts by keeping its memory (Jozefowicz et al. 2015).
            self.input_conv.bias.zero_()
            self.input_conv.bias[hidden_channels : 2 * hidden_channels].fill_(1.0)

    def forward(self, x: Tensor, state: State | None = None) -> State:
        """One step: ``x`` (B, C_in, H, W) and the previous state (zeros when None) -> new ``(h, c)``."""
        return self.update(self.input_conv(x), state)

    def update(self, input_gates: Tensor, state: State | None) -> State:
        """One step from precomputed ``input_conv(x)`` (B, 4 C_hidden, H, W)."""
        # A zero h adds nothing through the bias-free hidden_conv: skip it at the start.
        gates = input_gates if state is None else input_gates + self.hidden_conv(state[0])
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(i) * torch.tanh(g)
        if state is not None:
            c = c + torch.sigmoid(f) * state[1]
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """Stacked ConvLSTM layers run over a sequence; each layer's hidden state is the next one's input.

    The layers run one after another over the whole sequence (layer-major), which lets each layer's
    input convolution take all time steps in one call; the result equals the step-by-step order.

    Args:
        in_channels: channels of the input frames or feature maps.
        hidden_channels: the hidden channels of each layer, bottom first.
        kernel_size: side of the gate convolutions.
    """

    def __init__(self, in_channels: int, hidden_channels: tuple[int, ...], kernel_size: int = 3) -> None:
        super().__init__()
        channels = (in_channels, *hidden_channels)
        self.cells = nn.ModuleList(
            ConvLSTMCell(c_in, c_out, kernel_size) for c_in, c_out in itertools.pairwise(channels)
        )
        self.out_channels = channels[-1]

    def forward(self, x: Tensor, states: list[State] | None = None) -> tuple[Tensor, list[State]]:
        """Runs the stack over a sequence.

        Args:
            x: (B, T, C_in, H, W).
            states: one ``(h, c)`` per layer to continue from, or None to start from zeros.

        Returns:
            The top layer's hidden states (B, T, C_top, H, W) and the new state of every layer.
        """
        return run_layers(self.cells, x, states, lambda state: state[0])


def run_layers(
    cells: nn.ModuleList, x: Tensor, states: list[Any] | None, hidden: Callable[[Any], Tensor]
) -> tuple[Tensor, list[Any]]:
    """Runs stacked recurrent cells layer-major over a sequence (``ConvLSTM``, ``ConvGRU``).

    Args:
        cells: cells with ``input_conv`` (the input's convolution of every gate, one call for all
            time steps) and ``update(input_gates, state) -> state``.
        x: (B, T, C_in, H, W).
        states: one state per layer to continue from, or None to start from zeros.
        hidden: a cell state's hidden map (B, C, H, W), the next layer's input.

    Returns:
        The top layer's hidden maps (B, T, C_top, H, W) and the new state of every layer.
    """
    b, t = x.shape[:2]
    new_states = []
    for k, cell in enumerate(cells):
        input_gates = cell.input_conv(x.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, G*C, H, W)
        state = None if states is None else states[k]
        hs = []
        # unbind, not indexing: indexing's backward writes a full-size zero tensor per step.
        for gates in input_gates.unbind(1):
            state = cell.update(gates, state)
            hs.append(hidden(state))
        x = torch.stack(hs, dim=1)  # (B, T, C_k, H, W)
        new_states.append(state)
    return x, new_states
