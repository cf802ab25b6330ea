"""The video transformer backbone: shapes, patches, causality in time, token subsets, gradients, and a
classifier built on it through the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from airhockey.learn.config import to_dict
from airhockey.learn.downstream.classifier import ClassifierConfig, EncoderSpec, build_classifier
from airhockey.learn.nn.transformer import (
    TransformerConfig,
    VideoTransformer,
    frame_causal_attention,
    patchify,
    time_mask,
)

TINY = TransformerConfig(image_size=(16, 16), patch=4, width=16, depth=2, heads=2)


def encoder(config: TransformerConfig = TINY, seed: int = 0) -> VideoTransformer:
    torch.manual_seed(seed)
    return VideoTransformer(config).eval()


def test_feature_maps_have_the_documented_shapes():
    frames = torch.rand(2, 5, 3, 16, 16)  # (B, T, 3, H, W)
    model = encoder()
    assert model.out_channels == 16 and model.feature_size == (4, 4) and model.feature_count == 256
    with torch.no_grad():
        assert model.encode(frames).shape == (2, 5, 16, 4, 4)
        assert model(frames).shape == (2, 16, 4, 4)
        assert model(frames[:, 0]).shape == (2, 16, 4, 4)  # one frame
        assert model.encode_tokens(frames).shape == (2, 5 * 16, 16)


def test_patches_are_the_frames_cut_row_major_as_unfold_cuts_them():
    frames = torch.rand(3, 3, 16, 8)
    expected = F.unfold(frames, 4, stride=4).transpose(1, 2)  # (B, h w, 3 * 4 * 4)
    assert torch.equal(patchify(frames, 4), expected)
    assert torch.equal(patchify(frames[None], 4)[0], expected)  # leading dimensions pass through


def test_the_time_mask_lets_a_token_read_its_own_and_earlier_frames():
    mask = time_mask(torch.tensor([[0, 0, 1, 2]]))[0, 0]
    assert mask.tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
    ]


@pytest.mark.parametrize("tubelet", [1, 2])
def test_features_at_a_step_read_no_later_frame(tubelet):
    model = encoder(TransformerConfig(**{**to_dict(TINY), "tubelet": tubelet}))
    frames = torch.rand(2, 5, 3, 16, 16)
    changed = frames.clone()
    changed[:, 3] = torch.rand(2, 3, 16, 16)  # frame 3 only
    with torch.no_grad():
        maps, after = model.encode(frames), model.encode(changed)
        assert torch.equal(after[:, :3], maps[:, :3])  # steps 0..2 never read frame 3
        assert not torch.allclose(after[:, 3:], maps[:, 3:])
        for k in (1, 3):  # the features after k frames are those of the clip cut after frame k - 1
            torch.testing.assert_close(model(frames[:, :k]), maps[:, k - 1], rtol=1e-5, atol=1e-6)


def test_a_token_subset_reads_only_its_own_tokens():
    """The encoder run on a subset of the tokens (the masked methods' visible tokens) gives
    outputs that no other token's pixels change; run on all tokens it is ``encode``."""
    model = encoder()
    frames = torch.rand(2, 3, 3, 16, 16)
    keep = torch.tensor([[0, 5, 16, 21, 32, 37]] * 2)  # patches 0 and 5 of every frame (16 per frame)
    changed = frames.clone()
    changed[:, :, :, 8:, 8:] = torch.rand(2, 3, 3, 8, 8)  # patches 10, 11, 14, 15
    with torch.no_grad():
        subset = model.encode_tokens(frames, keep)
        assert subset.shape == (2, 6, 16)
        assert torch.equal(model.encode_tokens(changed, keep), subset)
        everything = model.encode_tokens(frames)  # (B, T N, D)
        torch.testing.assert_close(
            everything.view(2, 3, 4, 4, 16).permute(0, 1, 4, 2, 3), model.encode(frames)
        )
        full = model.encode_tokens(frames, keep, causal=False)
    assert not torch.allclose(full[:, :2], subset[:, :2])  # frame 0 reads later frames when not causal


@pytest.mark.parametrize("queries", [12, 4])
def test_attention_frame_by_frame_is_the_masked_attention(queries):
    """Three frames of four tokens: each query frame read on its own keys gives what the block-causal
    mask gives, for every query or for the last frame's alone."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 12, 8) for _ in range(3))
    masked = F.scaled_dot_product_attention(q, k, v, attn_mask=time_mask(torch.arange(12)[None] // 4))
    frame_by_frame = frame_causal_attention(q[:, :, 12 - queries :], k, v, 4)
    torch.testing.assert_close(frame_by_frame, masked[:, :, 12 - queries :], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(F.scaled_dot_product_attention(q, k, v), masked)  # the mask matters


def test_the_last_frame_alone_gives_the_features_and_gradients_of_every_frame():
    """``forward`` and ``encode_windows`` run the final block on the last frame's tokens only: their
    features and the weights' gradients are those of ``encode`` cut to the last step."""
    model = encoder().train()
    frames = torch.rand(2, 4, 3, 16, 16)
    model.encode(frames)[:, -1].square().sum().backward()
    full = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    last = model(frames)
    last.square().sum().backward()
    torch.testing.assert_close(last, model.encode(frames)[:, -1], rtol=1e-5, atol=1e-6)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, full[name], rtol=1e-4, atol=1e-6, msg=name)
    windows = torch.tensor([[0, 1, 2, 3], [2, 3, 4, 5], [5, 5, 5, 5]])
    pool = torch.rand(6, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            model.encode_windows(pool, windows), model.encode(pool[windows])[:, -1], rtol=1e-5, atol=1e-6
        )


def test_every_parameter_gets_a_gradient():
    model = encoder().train()
    model.encode(torch.rand(2, 3, 3, 16, 16)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


def test_sizes_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match=r"divisible by patch \(8\)"):
        TransformerConfig(image_size=(20, 16))
    with pytest.raises(ValueError, match="divisible by 4 and by heads"):
        TransformerConfig(width=18, heads=2)
    with pytest.raises(ValueError, match="depth must be an integer"):
        TransformerConfig(depth=0)


@pytest.mark.parametrize("name", ["videomae", "vjepa"])
def test_a_classifier_on_the_transformer_trains_a_step(name):
    config = {"encoder": to_dict(TINY)}
    model = build_classifier(ClassifierConfig(EncoderSpec(name, config), hidden=8), seed=0)
    assert isinstance(model.encoder, VideoTransformer)
    frames, labels = torch.rand(4, 2, 3, 16, 16), torch.tensor([0, 1, 0, 1])  # k = 2 frames each
    with torch.no_grad():
        model.scaler.fit(model.encoder(frames).flatten(1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = F.cross_entropy(model(frames), labels)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
