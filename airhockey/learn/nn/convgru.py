"""The convolutional GRU (Ballas et al. 2016, Siam et al. 2016): a cell, and a stack run over a sequence.

Leuschner and Scheffczyk 2020 (section 3) replace the Video Ladder Network's ConvLSTMs with
ConvGRUs: one state map instead of two and three gate convolutions instead of four, for less memory
and computation, which short-horizon prediction does not miss. The interface follows
``learn.nn.convlstm``: the state keeps its spatial layout, ``h`` is a feature map ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from airhockey.learn.nn.recurrent import RecurrentStack

State = Tensor
"""A layer's hidden state ``h``, ``(B, C_hidden, H, W)``."""


class ConvGRUCell(nn.Module):
    """One ConvGRU layer.

    With update gate ``z``, reset gate ``r`` and candidate ``n``::

        z = sigmoid(W_xz * x + W_hz * h),  r = sigmoid(W_xr * x + W_hr * h)
        n = tanh(W_xn * x + W_hn * (r . h)),  h' = (1 - z) . n + z . h

    As in ``ConvLSTMCell``, the input convolution of all three is one call (``input_conv``) that a
    stack applies to every time step of a known sequence at once; only the hidden-state halves run
    step by step.

    Args:
        in_channels: channels of the input ``x``.
        hidden_channels: channels of ``h``.
        kernel_size: side of the square gate convolutions (odd, "same" padding).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.hidden_channels = hidden_channels
        pad = kernel_size // 2
        self.input_conv = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, padding=pad)
        self.gate_conv = nn.Conv2d(hidden_channels, 2 * hidden_channels, kernel_size, padding=pad, bias=False)
        self.candidate_conv = nn.Conv2d(
            hidden_channels, hidden_channels, kernel_size, padding=pad, bias=False
        )

    def forward(self, x: Tensor, state: State | None = None) -> State:
        """One step: ``x`` (B, C_in, H, W) and the previous ``h`` (zeros when None) -> new ``h``."""
        return self.update(self.input_conv(x), state)

    def update(self, input_gates: Tensor, state: State | None) -> State:
        """One step from precomputed ``input_conv(x)`` (B, 3 C_hidden, H, W)."""
        xz, xr, xn = input_gates.chunk(3, dim=1)
        if state is None:
            # A zero h adds nothing through the bias-free hidden convolutions, and z . h is zero.
            return (1 - torch.sigmoid(xz)) * torch.tanh(xn)
        hz, hr = self.gate_conv(state).chunk(2, dim=1)
        z, r = torch.sigmoid(xz + hz), torch.sigmoid(xr + hr)
        n = torch.tanh(xn + self.candidate_conv(r * state))
        return n + z * (state - n)


class ConvGRU(RecurrentStack):
    """Stacked ConvGRU layers run over a sequence (``RecurrentStack``); a layer's state is ``h``.

    Args:
        in_channels: channels of the input frames or feature maps.
        hidden_channels: the hidden channels of each layer, bottom first.
        kernel_size: side of the gate convolutions.
    """

    cell_class = ConvGRUCell

    @staticmethod
    def hidden(state: State) -> Tensor:
        return state
