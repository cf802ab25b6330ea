import pytest
import torch

from airhockey.learn.nn import recurrent
from airhockey.learn.nn.convlstm import ConvLSTM, ConvLSTMCell


def test_cell_keeps_the_spatial_layout_of_its_state():
    cell = ConvLSTMCell(3, 5, kernel_size=3)
    x = torch.rand(2, 3, 8, 10)
    h, c = cell(x)
    assert h.shape == c.shape == (2, 5, 8, 10)
    h2, _ = cell(x, (h, c))
    assert h2.shape == (2, 5, 8, 10)
    assert not torch.allclose(h2, h)  # the state is read


def test_cell_rejects_an_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(3, 4, kernel_size=2)


def test_stack_over_a_sequence_equals_stepping_it_one_frame_at_a_time():
    torch.manual_seed(0)
    stack = ConvLSTM(3, (4, 6), kernel_size=3)
    x = torch.rand(2, 5, 3, 8, 8)  # (B, T, C, H, W)
    whole, states = stack(x)
    assert whole.shape == (2, 5, 6, 8, 8)
    assert [s[0].shape[1] for s in states] == [4, 6]
    stepped, step_states = [], None
    for t in range(5):
        out, step_states = stack(x[:, t : t + 1], step_states)
        stepped.append(out)
    torch.testing.assert_close(torch.cat(stepped, dim=1), whole)
    torch.testing.assert_close(step_states[-1][1], states[-1][1])


def plain_convlstm(stack: ConvLSTM, x: torch.Tensor) -> tuple[torch.Tensor, list]:
    """The reference: one step at a time through every layer, each cell's gates from its two
    convolutions of that step's input and hidden state, (B, T, C, H, W) -> hidden states and states."""
    states = [None] * len(stack.cells)
    outputs = []
    for step in x.unbind(1):
        for k, cell in enumerate(stack.cells):
            gates = cell.input_conv(step)
            if states[k] is not None:
                gates = gates + cell.hidden_conv(states[k][0])
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(i) * torch.tanh(g)
            if states[k] is not None:
                c = c + torch.sigmoid(f) * states[k][1]
            states[k] = (torch.sigmoid(o) * torch.tanh(c), c)
            step = states[k][0]
        outputs.append(step)
    return torch.stack(outputs, dim=1), states


def outputs_and_gradients(stack: ConvLSTM, x: torch.Tensor, run) -> list[torch.Tensor]:
    """The top hidden states, the last cell states and the gradients of the input and every weight."""
    stack.zero_grad()
    x = x.clone().requires_grad_()
    out, states = run(stack, x)
    (out.square().mean() + sum(c.mean() for _, c in states)).backward()
    # At k = 1 no hidden convolution runs (the state starts at zero): its gradient stays None.
    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in stack.parameters()]
    return [out, *(c for _, c in states), x.grad, *grads]


@pytest.mark.parametrize("layout_bytes", [0, 2**62, recurrent.PER_STEP_BYTES])
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_stack_equals_a_plain_per_step_convlstm_forward_and_backward(k, layout_bytes, monkeypatch):
    # 0: the input convolution one step at a time; 2**62: batched over all steps; else as chosen.
    monkeypatch.setattr(recurrent, "PER_STEP_BYTES", layout_bytes)
    torch.manual_seed(0)
    stack = ConvLSTM(8, (4, 4), kernel_size=3)
    x = torch.rand(16, k, 8, 16, 16)  # gates of 64 windows x steps: from 256 KiB to 2 MiB
    got = outputs_and_gradients(stack, x, lambda s, v: s(v))
    expected = outputs_and_gradients(stack, x, plain_convlstm)
    for a, b in zip(got, expected, strict=True):
        # Float rounding only: a batched convolution sums its weight gradient in another order.
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6 * b.abs().max().item())


def test_the_stack_keeps_its_parameter_names():
    stack = ConvLSTM(8, (4, 4), kernel_size=3)
    assert list(stack.state_dict()) == [
        f"cells.{k}.{name}"
        for k in (0, 1)
        for name in ("input_conv.weight", "input_conv.bias", "hidden_conv.weight")
    ]
