"""Frame-prediction metrics: MSE, PSNR, SSIM, and MSE on the pixels that move.

Frames are float tensors in [0, 1], ``(N, 3, H, W)``. PSNR and SSIM are per-frame values averaged
over frames; MSE is averaged over all pixels and channels. The moving pixels of a prediction are
those whose true value changes between the previous frame and the target (where the puck and bar
are, and where they were), so that the static background cannot dilute the error.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def moving_mask(previous: Tensor, target: Tensor, threshold: float) -> Tensor:
    """Pixels that change by more than ``threshold`` in any channel: (N, 3, H, W) -> (N, 1, H, W) bool."""
    return (target - previous).abs().amax(dim=-3, keepdim=True) > threshold


SSIM_CHUNK_VALUES = 2**19
"""Most values of the stacked statistics (5 maps per channel) that ``ssim`` holds at once: its
temporaries stay small enough for the allocator to reuse them, not map fresh pages per call."""

_gaussian_rows: dict[tuple[int, float, int, torch.dtype, torch.device], Tensor] = {}


def gaussian_row(
    window: int, sigma: float, channels: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """A normalised 1-D Gaussian as a depthwise convolution's weight, (channels, 1, 1, window).

    Computed in float64 and cast; cached per argument tuple, so that repeated calls allocate nothing.
    """
    key = (window, sigma, channels, dtype, device)
    if key not in _gaussian_rows:
        x = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
        g = torch.exp(-(x**2) / (2 * sigma**2))
        g = (g / g.sum()).to(dtype=dtype, device=device)
        _gaussian_rows[key] = g.expand(channels, 1, 1, window).contiguous()
    return _gaussian_rows[key]


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity of each frame (Wang et al. 2004), for data in [0, 1], in float32.

    An 11x11 Gaussian window (sigma 1.5) over the valid region of each channel, constants
    ``(0.01)^2`` and ``(0.03)^2``, averaged over channels and positions. The window is separable:
    a row, then a column convolution. Variances and covariance come from frames shifted by the
    target's mean per frame and channel (they do not change under a shift, and E[x^2] - E[x]^2
    cancels badly in float32 on flat regions far from 0); on data in [0, 1] the result agrees
    with a float64 evaluation to about 1e-6. Frames are processed in chunks of at most
    ``SSIM_CHUNK_VALUES`` stacked values.

    Args:
        pred: (N, C, H, W).
        target: (N, C, H, W), with H and W at least ``window``.

    Returns:
        (N,) float32 SSIM per frame, 1 for identical frames.
    """
    pred, target = pred.float(), target.float()
    channels, height, width = pred.shape[1:]
    row = gaussian_row(window, sigma, 5 * channels, pred.dtype, pred.device)
    chunk = max(1, SSIM_CHUNK_VALUES // (5 * channels * height * width))
    return torch.cat(
        [ssim_chunk(p, t, row) for p, t in zip(pred.split(chunk), target.split(chunk), strict=True)]
    )


def ssim_chunk(pred: Tensor, target: Tensor, row: Tensor) -> Tensor:
    """``ssim`` of a few frames (N, C, H, W) with the Gaussian ``row`` (5 C, 1, 1, window): -> (N,)."""
    c1, c2 = 0.01**2, 0.03**2
    shift = target.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    p, t = pred - shift, target - shift
    stacked = torch.cat([p, t, p * p, t * t, p * t], dim=1)  # (N, 5C, H, W)
    groups = row.shape[0]
    blurred = F.conv2d(F.conv2d(stacked, row, groups=groups), row.transpose(2, 3), groups=groups)
    mu_p, mu_t, pp, tt, pt = blurred.chunk(5, dim=1)  # each (N, C, H - k + 1, W - k + 1), shifted
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    mu_p, mu_t = mu_p + shift, mu_t + shift
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


class FramePredictionStats:
    """Accumulates the metrics of one predictor over batches of predicted frames.

    Args:
        moving_threshold: the change that makes a pixel "moving" (see ``moving_mask``).
    """

    def __init__(self, moving_threshold: float) -> None:
        self.moving_threshold = moving_threshold
        self.frames = 0
        self.sq_error = 0.0  # summed over pixels and channels
        self.values = 0  # pixels x channels
        self.psnr = 0.0  # summed over frames
        self.ssim = 0.0
        self.moving_sq_error = 0.0
        self.moving_values = 0

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor, previous: Tensor) -> None:
        """Adds frames: the prediction, the true frame, and the true frame before it, each (N, 3, H, W)."""
        pred = pred.clamp(0.0, 1.0)
        sq = (pred - target) ** 2  # (N, 3, H, W)
        per_frame = sq.flatten(1).mean(dim=1)  # (N,)
        mask = moving_mask(previous, target, self.moving_threshold).expand_as(sq)
        self.frames += pred.shape[0]
        self.sq_error += sq.sum().item()
        self.values += sq.numel()
        self.psnr += (-10.0 * torch.log10(per_frame.clamp_min(1e-10))).sum().item()
        self.ssim += ssim(pred, target).sum().item()
        self.moving_sq_error += sq[mask].sum().item()
        self.moving_values += int(mask.sum().item())

    def result(self) -> dict[str, float]:
        """``mse``, ``psnr`` (dB, mean over frames), ``ssim``, ``moving_mse`` (NaN if no pixel moved)."""
        if self.frames == 0:
            raise ValueError("no frames were added")
        return {
            "mse": self.sq_error / self.values,
            "psnr": self.psnr / self.frames,
            "ssim": self.ssim / self.frames,
            "moving_mse": self.moving_sq_error / self.moving_values if self.moving_values else math.nan,
        }
