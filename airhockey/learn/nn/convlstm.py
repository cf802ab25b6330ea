"""The convolutional LSTM (Shi et al. 2015): a cell, and a stack of cells run over a sequence.

In a ConvLSTM the input, forget and output gates and the candidate cell state are computed by
convolutions of the input and of the previous hidden state, so the state keeps its spatial layout:
``h`` and ``c`` are feature maps ``(B, C, H, W)``, not vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from airhockey.learn.nn.recurrent import RecurrentStack

State = tuple[Tensor, Tensor]
"""A layer's ``(h, c)``: hidden state and cell state, each ``(B, C_hidden, H, W)``."""


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer.

    ``conv([x, h])`` is computed as ``input_conv(x) + hidden_conv(h)`` (the same linear map), so that
    the input half can be applied to all time steps of a known sequence in one batched call, and only
    the hidden half runs step by step. There are no peephole terms (Shi et al. have ``W_c * c``); the
    public ConvLSTM code that Han et al. 2021 adapt (Nielsen 2020) has none either.

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


class ConvLSTM(RecurrentStack):
    """Stacked ConvLSTM layers run over a sequence (``RecurrentStack``); a layer's state is ``(h, c)``.

    Args:
        in_channels: channels of the input frames or feature maps.
        hidden_channels: the hidden channels of each layer, bottom first.
        kernel_size: side of the gate convolutions.
    """

    cell_class = ConvLSTMCell

    @staticmethod
    def hidden(state: State) -> Tensor:
        return state[0]
