"""The one device check of the learning stage, and the numeric precision training runs in.

A precision (``PRECISIONS`` in ``learn.config``) is one of:

- ``fp32``: IEEE float32 everywhere, also on CUDA (TF32 tensor cores off): the default, the same
  numerics on every device.
- ``tf32``: CUDA only: float32 tensors, matrix products and convolutions on TF32 tensor cores
  (GPUs of compute capability 8.0 or newer).
- ``bf16``: forward passes under ``torch.autocast`` in bfloat16; on a CPU only where it has
  bfloat16 instructions (AVX512-BF16 or AMX), on CUDA where the GPU supports bfloat16.
- ``fp16``: CUDA only: forward passes under autocast in float16, the loss scaled by a
  ``GradScaler`` so that small gradients do not flush to zero.

Only forward passes run in the lower precision: their outputs come back as float32, so losses,
metrics and optimiser states are float32 (``Precision.autocast_calls``). On a CPU each precision is
reproducible: the same seed gives the same result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from airhockey.errors import UserError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""The precisions that run forward passes under autocast, and the dtype they autocast to."""


def check_device(device: str, precision: str = "fp32") -> torch.device:
    """The torch device named by ``device``, checked to exist here and to run ``precision``.

    Raises:
        UserError: for a CUDA device on a machine without one, a name torch does not know, or a
            precision this device cannot run (``check_precision``).
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
    check_precision(precision, dev)
    return dev


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX), which make bf16 autocast
    fast; without them torch emulates bfloat16, slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return "BF16" in torch.backends.cpu.get_cpu_capability().upper()


def check_precision(precision: str, device: torch.device) -> None:
    """Checks that ``device`` runs ``precision`` natively.

    Raises:
        UserError: for an unknown precision, ``tf32`` or ``fp16`` off CUDA (or ``tf32`` on a GPU
            older than compute capability 8.0), or ``bf16`` on a CPU or GPU without bfloat16.
    """
    from airhockey.learn.config import PRECISIONS

    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if precision in ("tf32", "fp16") and not cuda:
        raise UserError(f"precision {precision} needs a CUDA device: on a CPU use fp32 or bf16")
    if precision == "tf32" and torch.cuda.get_device_capability(device)[0] < 8:
        raise UserError("precision tf32 needs a GPU of compute capability 8.0 or newer: use fp32")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise UserError("this GPU has no bfloat16: use fp16 or fp32")
    if precision == "bf16" and not cuda and not cpu_has_bf16():
        raise UserError("this CPU has no bfloat16 instructions (AVX512-BF16 or AMX): use fp32")


def float32(value: Any) -> Any:
    """``value`` (a tensor, or a tuple, list or dict of them) with floating tensors as float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: float32(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(float32(v) for v in value)
    return value


class Precision:
    """How one training session computes: autocast around forward passes, TF32 flags, loss scaling.

    Args:
        name: one of ``PRECISIONS``.
        device: where the session runs (checked with ``check_precision``).

    Raises:
        UserError: for a precision ``device`` cannot run.
    """

    def __init__(self, name: str, device: torch.device) -> None:
        check_precision(name, device)
        self.name, self.device = name, device
        self.dtype = AUTOCAST_DTYPES.get(name)
        """The dtype forward passes autocast to; None: float32 (fp32, tf32)."""
        self.scaler = torch.amp.GradScaler(device.type, enabled=name == "fp16")
        """Scales the loss (fp16 only; a no-op otherwise); its state belongs in a resumable checkpoint."""

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which forward passes run in the precision (a no-op for fp32 and tf32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @contextlib.contextmanager
    def autocast_calls(self, model: torch.nn.Module) -> Iterator[None]:
        """Within it, every call of ``model`` or of any module inside it runs under ``autocast``
        and returns float32, so that a loss or metric computed from the outputs (by a method's own
        code, such as an SSIM) stays float32 whatever the precision; on CUDA, TF32 is on for tf32
        and off otherwise, restored on exit."""
        with contextlib.ExitStack() as stack:
            if self.device.type == "cuda":
                stack.enter_context(_tf32(self.name == "tf32"))
            if self.dtype is not None:
                stack.enter_context(_autocast_hooks(model, self.autocast))
            yield

    def step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        clip: tuple[list[torch.nn.Parameter], float] | None = None,
    ) -> None:
        """Back-propagates ``loss`` and takes an optimiser step, the gradients first clipped to the
        norm ``clip[1]`` over the parameters ``clip[0]`` when given (unscaled first under fp16)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(clip[0], clip[1])
        self.scaler.step(optimizer)
        self.scaler.update()


@contextlib.contextmanager
def _tf32(on: bool) -> Iterator[None]:
    """CUDA's TF32 flags for matrix products and cuDNN convolutions set to ``on``, then restored."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def _autocast_hooks(
    model: torch.nn.Module, autocast: Callable[[], contextlib.AbstractContextManager[Any]]
) -> Iterator[None]:
    """Hooks on every module of ``model``: the outermost module call enters ``autocast()``, and
    leaves it on return (or on an error) with its output cast to float32."""
    depth, contexts = [0], []

    def enter(module: torch.nn.Module, args: Any) -> None:
        if depth[0] == 0:
            contexts.append(autocast())
            contexts[-1].__enter__()
        depth[0] += 1

    def leave(module: torch.nn.Module, args: Any, output: Any) -> Any:
        depth[0] -= 1
        if depth[0] == 0:
            contexts.pop().__exit__(None, None, None)
            return float32(output)
        return None

    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave, always_call=True) for m in model.modules()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
