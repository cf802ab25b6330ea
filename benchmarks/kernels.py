"""CPU cost of the hot kernels, old formulation against new, with one torch thread.

Prints one table: CPU seconds (``time.process_time``, median of ``--repeats``) of ``lvln``'s loss
SSIM (``fast_ssim``: 7x7 ``avg_pool2d`` against a depthwise convolution), the validation SSIM
(``metrics.ssim``: float64 against float32 in chunks), the shared encoder's ConvLSTM stack at
the classifier's shape (batch ``ClassifyConfig.batch_size``, ``EncoderConfig``'s sizes, k = 1, 2,
4, 8 frames; the input convolution batched over all steps, a plain one-step-at-a-time ConvLSTM,
and the stack as it now chooses), and an ``lvln`` training step at its default config (batch
``PretextConfig.batch_size``, 64x64 frames) with the old and the new ``fast_ssim``; each with the
ratio new/old. It also measures the machine's 1-thread conv2d peak (GFLOP/s of a large conv2d, in
the same run) and gives the ``lvln`` step's model FLOP utilisation (FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode``) against it. The machine may be shared: compare the
ratios, which come from the same run.

    python benchmarks/kernels.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import print_table
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from airhockey.learn.config import ClassifyConfig, EncoderConfig, PretextConfig
from airhockey.learn.methods import lvln
from airhockey.learn.methods.lvln import LVLN, LVLNConfig
from airhockey.learn.nn import recurrent
from airhockey.learn.nn.convlstm import ConvLSTM
from airhockey.learn.nn.metrics import ssim


def cpu_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU seconds of one call of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def pooled_ssim(pred: Tensor, target: Tensor, window: int = 7) -> Tensor:
    """The old ``fast_ssim``: the window's means from ``avg_pool2d``, no shift."""
    c1, c2 = 0.01**2, 0.03**2
    stacked = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    mu_p, mu_t, pp, tt, pt = F.avg_pool2d(stacked, window, stride=1).chunk(5, dim=1)
    var_p, var_t = (pp - mu_p**2).clamp_min(0), (tt - mu_t**2).clamp_min(0)
    cov = pt - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


def float64_ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """The old ``metrics.ssim``: float64, its Gaussian built on every call, all frames at once."""
    c1, c2 = 0.01**2, 0.03**2
    pred, target = pred.double(), target.double()
    channels = pred.shape[1]
    x = torch.arange(window, dtype=pred.dtype) - (window - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).expand(5 * channels, 1, 1, window)
    stacked = torch.cat([pred, target, pred * pred, target * target, pred * target], dim=1)
    blurred = F.conv2d(F.conv2d(stacked, g, groups=5 * channels), g.transpose(2, 3), groups=5 * channels)
    mu_p, mu_t, pp, tt, pt = blurred.chunk(5, dim=1)
    var_p, var_t, cov = pp - mu_p**2, tt - mu_t**2, pt - mu_p * mu_t
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


def plain_convlstm(stack: ConvLSTM, x: Tensor) -> Tensor:
    """A plain ConvLSTM: every layer one step at a time, (B, T, C, H, W) -> top hidden states."""
    states: list = [None] * len(stack.cells)
    outputs = []
    for step in x.unbind(1):
        for k, cell in enumerate(stack.cells):
            states[k] = cell(step, states[k])
            step = states[k][0]
        outputs.append(step)
    return torch.stack(outputs, dim=1)


def table_clips(n: int, length: int, size: int) -> Tensor:
    """(n, length, 3, size, size): a dark 5-px puck crossing a light table, for timing only."""
    gen = torch.Generator().manual_seed(0)
    clips = torch.full((n, length, 3, size, size), 230 / 255)
    for i, (y, x) in enumerate(torch.randint(0, size - 5 - length, (n, 2), generator=gen).tolist()):
        for t in range(length):
            clips[i, t, :, y + t // 2 : y + t // 2 + 5, x + t : x + t + 5] = 25 / 255
    return clips


def conv_peak(repeats: int) -> float:
    """FLOP/s of a large 3x3 conv2d (64 -> 64 channels, 32 x 56x56 maps) on this thread."""
    x, w = torch.rand(32, 64, 56, 56), torch.rand(64, 64, 3, 3)
    flops = 2 * 32 * 64 * 56 * 56 * 64 * 9
    with torch.no_grad():
        return flops / cpu_seconds(lambda: F.conv2d(x, w, padding=1), repeats)


def ssim_rows(repeats: int) -> list[tuple[str, float, float]]:
    """(name, old s, new s) of the loss SSIM (forward and backward) and the validation SSIM."""
    config = LVLNConfig()
    batch = PretextConfig().batch_size
    frames = table_clips(batch, config.clip_length, config.image_size[0]).flatten(0, 1)
    target = frames.roll(1, dims=-1)
    pred = (frames + 0.01 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    n = pred.shape[0]

    def loss_step(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[], None]:
        def step() -> None:
            x = pred.clone().requires_grad_()
            fn(x, target).mean().backward()

        return step

    with torch.no_grad():
        old_val = cpu_seconds(lambda: float64_ssim(pred, target), repeats)
        new_val = cpu_seconds(lambda: ssim(pred, target), repeats)
    return [
        (f"fast_ssim fwd+bwd ({n} frames)", cpu_seconds(loss_step(pooled_ssim), repeats),
         cpu_seconds(loss_step(lvln.fast_ssim), repeats)),
        (f"metrics.ssim ({n} frames)", old_val, new_val),
    ]  # fmt: skip


def convlstm_rows(repeats: int) -> list[tuple[str, float, float, float]]:
    """(name, batched s, plain s, new s) of the encoder's ConvLSTM stack, training and evaluating."""
    encoder = EncoderConfig()
    batch = ClassifyConfig().batch_size
    torch.manual_seed(0)
    stack = ConvLSTM(encoder.stem_channels[-1], (encoder.hidden_channels,) * 2, encoder.kernel_size)
    rows = []
    for k in (1, 2, 4, 8):
        x = torch.rand(batch, k, encoder.stem_channels[-1], *encoder.feature_size)

        def batched(v: Tensor) -> Tensor:
            saved, recurrent.PER_STEP_BYTES = recurrent.PER_STEP_BYTES, 2**62
            try:
                return stack(v)[0]
            finally:
                recurrent.PER_STEP_BYTES = saved

        layouts = (batched, lambda v: plain_convlstm(stack, v), lambda v: stack(v)[0])

        def train(run: Callable[[Tensor], Tensor], x: Tensor = x) -> Callable[[], None]:
            return lambda: run(x.clone().requires_grad_()).square().mean().backward()

        def evaluate(run: Callable[[Tensor], Tensor], x: Tensor = x) -> Callable[[], None]:
            def call() -> None:
                with torch.no_grad():
                    run(x)

            return call

        for mode, wrap in (("fwd+bwd", train), ("no_grad", evaluate)):
            seconds = [cpu_seconds(wrap(run), repeats) for run in layouts]
            rows.append((f"ConvLSTM {mode} B={batch} k={k}", *seconds))
    return rows


def lvln_rows(repeats: int, peak: float) -> list[tuple[str, float, float, float]]:
    """(name, old s, new s, new step's MFU) of an ``lvln`` training step at its default config."""
    method = LVLN(LVLNConfig())
    pretext = PretextConfig()
    clip = table_clips(pretext.batch_size, method.config.clip_length, method.config.image_size[0])
    torch.manual_seed(0)
    model = method.build_model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=pretext.lr, weight_decay=pretext.weight_decay)

    def step() -> None:
        loss = method.loss(model, clip)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), pretext.grad_clip)
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        method.loss(model, clip).backward()
    flops = counter.get_total_flops()
    new_fast_ssim = lvln.fast_ssim
    lvln.fast_ssim = pooled_ssim  # ladder_loss reads the module's global
    try:
        old = cpu_seconds(step, repeats)
    finally:
        lvln.fast_ssim = new_fast_ssim
    new = cpu_seconds(step, repeats)
    name = f"lvln step (batch {pretext.batch_size}, {flops / 1e9:.2f} GFLOP)"
    return [(name, old, new, flops / new / peak)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (median)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    torch.set_num_threads(1)

    peak = conv_peak(args.repeats)
    rows: list[tuple[object, ...]] = []
    for name, old, new in ssim_rows(args.repeats):
        rows.append((name, f"{old:.4f}", "", f"{new:.4f}", f"{new / old:.2f}", "", ""))
    for name, batched, plain, new in convlstm_rows(args.repeats):
        rows.append((name, f"{batched:.4f}", f"{plain:.4f}", f"{new:.4f}", f"{new / batched:.2f}",
                     f"{new / plain:.2f}", ""))  # fmt: skip
    for name, old, new, mfu in lvln_rows(args.repeats, peak):
        rows.append((name, f"{old:.4f}", "", f"{new:.4f}", f"{new / old:.2f}", "", f"{mfu:.2f}"))
    print_table(
        f"Kernels, old against new: CPU seconds per call (median of {args.repeats}), 1 torch thread; "
        f"1-thread conv2d peak {peak / 1e9:.1f} GFLOP/s",
        ["measure", "old (s)", "plain per-step (s)", "new (s)", "new/old", "new/plain", "MFU (new)"],
        rows,
    )


if __name__ == "__main__":
    main()
