"""Numeric precision (``learn.device``): which device runs which precision, autocast around forward
passes only, float32 outputs, and the settings that choose it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from airhockey.errors import UserError
from airhockey.learn.config import ClassifyConfig, CompareConfig, PretextConfig, apply_settings
from airhockey.learn.device import Precision, check_device, check_precision, cpu_has_bf16

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bfloat16 instructions")


@pytest.mark.parametrize("name", ["fp16", "tf32"])
def test_cuda_only_precisions_are_refused_on_a_cpu_in_one_line(name):
    with pytest.raises(UserError, match=f"precision {name} needs a CUDA device"):
        check_device("cpu", name)


def test_an_unknown_precision_is_refused_by_the_check_and_by_every_config():
    with pytest.raises(UserError, match="unknown precision 'fp64'"):
        check_precision("fp64", CPU)
    for config in (PretextConfig, ClassifyConfig):
        with pytest.raises(ValueError, match="precision must be one of fp32, tf32, bf16, fp16"):
            config(precision="fp64")
    with pytest.raises(UserError, match=r"training\.precision"):
        apply_settings(CompareConfig(), ["training.precision=half"])
    assert apply_settings(CompareConfig(), ["training.precision=bf16"]).training.precision == "bf16"


def test_bf16_on_this_cpu_is_accepted_exactly_where_it_has_bfloat16_instructions():
    if cpu_has_bf16():
        check_precision("bf16", CPU)
    else:
        with pytest.raises(UserError, match="no bfloat16 instructions"):
            check_precision("bf16", CPU)


class _Net(nn.Module):
    """A convolution and a linear layer; records the dtype each layer computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.linear = nn.Linear(4 * 8 * 8, 2)
        self.seen: list[torch.dtype] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.conv(x)
        self.seen.append(h.dtype)
        return {"logits": self.linear(h.flatten(1)), "features": h}


@needs_bf16
def test_bf16_runs_the_modules_in_bfloat16_and_hands_back_float32_outside_them():
    net, x = _Net(), torch.rand(2, 3, 8, 8)
    precision = Precision("bf16", CPU)
    with precision.autocast_calls(net):
        out = net(x)
        features = net.conv(x)  # a submodule called on its own is covered too
        outside = torch.nn.functional.conv2d(x, net.conv.weight)  # code outside any module: float32
    assert net.seen == [torch.bfloat16]
    assert out["logits"].dtype == out["features"].dtype == features.dtype == torch.float32
    assert outside.dtype == torch.float32
    out["logits"].sum().backward()
    assert net.conv.weight.grad is not None and net.conv.weight.grad.dtype == torch.float32
    net(x)  # the hooks are gone after the context
    assert net.seen[-1] == torch.float32


@needs_bf16
def test_an_error_inside_a_forward_pass_leaves_autocast_off():
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("broken")

    net = Broken()
    with Precision("bf16", CPU).autocast_calls(net):
        with pytest.raises(RuntimeError, match="broken"):
            net(torch.zeros(1))
        assert not torch.is_autocast_enabled("cpu")


def test_fp32_changes_nothing_and_scales_no_loss():
    net, x = _Net(), torch.rand(2, 3, 8, 8)
    precision = Precision("fp32", CPU)
    expected = net(x)["logits"]
    with precision.autocast_calls(net):
        assert torch.equal(net(x)["logits"], expected)
    assert net.seen == [torch.float32, torch.float32] and not precision.scaler.is_enabled()
