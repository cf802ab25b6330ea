import pytest
import torch

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
