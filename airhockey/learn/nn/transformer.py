"""A small video transformer: patch (tubelet) tokens, pre-norm blocks, block-causal attention in time.

``VideoTransformer`` is a ``VideoEncoder`` beside the ConvLSTM one (``autoencoder.FrameEncoder``):
each frame is cut into ``patch`` x ``patch`` patches (ViT, Dosovitskiy et al. 2021); a token at
time t embeds its patch in frames t - tubelet + 1 .. t (a causal tubelet: ViViT's tubelet
embedding, Arnab et al. 2021, with stride 1 in time and the past side padded with zeros), plus
fixed sine-cosine positions in space and time. The blocks' attention is block-causal in time: a
token at time t attends to every token of times 0..t, so the features after frame t read frames
0..t only. The output tokens of each frame, laid out on the patch grid, are the feature maps
``(B, T, width, H / patch, W / patch)`` that classifiers and probes read.

Masked methods (``methods.videomae``, ``methods.vjepa``) run the encoder on a subset of the tokens
(``encode_tokens``) and may lift the causal mask for their pretext pass (``causal=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.ranges import Range, check_fields


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of the video transformer backbone (``VideoTransformer``)."""

    image_size: tuple[Annotated[int, Range(1, 4096)], Annotated[int, Range(1, 4096)]] = (64, 64)
    """Frame height and width in pixels (1-4,096); each must be divisible by ``patch``. Training
    sets it from the data."""
    patch: Annotated[int, Range(1, 256)] = 8
    """Side of the square patches in pixels, 1-256: the feature maps are (H / patch, W / patch)."""
    tubelet: Annotated[int, Range(1, 16)] = 1
    """Frames a token embeds, 1-16: its own and the ones before (zeros before the first frame)."""
    width: Annotated[int, Range(1, 4096)] = 64
    """Token width D (the channels classifiers read), 1-4,096; divisible by 4 and by ``heads``."""
    depth: Annotated[int, Range(1, 64)] = 4
    """Transformer blocks, 1-64."""
    heads: Annotated[int, Range(1, 64)] = 4
    """Attention heads per block, 1-64."""
    mlp_ratio: Annotated[int, Range(1, 16)] = 4
    """Hidden units of each block's MLP per unit of width, 1-16."""

    def __post_init__(self) -> None:
        check_fields(self)
        if any(side % self.patch for side in self.image_size):
            raise ValueError(f"image_size {tuple(self.image_size)} must be divisible by patch ({self.patch})")
        if self.width % self.heads or self.width % 4:
            raise ValueError(f"width ({self.width}) must be divisible by 4 and by heads ({self.heads})")

    @property
    def feature_size(self) -> tuple[int, int]:
        """Height and width (h, w) of the patch grid."""
        return self.image_size[0] // self.patch, self.image_size[1] // self.patch

    @property
    def patches(self) -> int:
        """Patches N of one frame, h * w."""
        return self.feature_size[0] * self.feature_size[1]


def sincos(positions: Tensor, width: int) -> Tensor:
    """Fixed sine-cosine embeddings of positions: (L,) -> (L, width), width even."""
    freqs = torch.exp(-math.log(10000.0) * torch.arange(width // 2, dtype=torch.float64) / (width // 2))
    angles = positions.double()[:, None] * freqs  # (L, width / 2)
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def grid_positions(size: tuple[int, int], width: int) -> Tensor:
    """2D sine-cosine embeddings of a patch grid, rows then columns: -> (h w, width)."""
    rows, cols = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    return torch.cat([sincos(rows.flatten(), width // 2), sincos(cols.flatten(), width // 2)], dim=1)


def patchify(frames: Tensor, patch: int) -> Tensor:
    """Frames cut into patches, row-major: (..., 3, H, W) -> (..., h w, 3 patch^2)."""
    *lead, c, h, w = frames.shape
    x = frames.reshape(*lead, c, h // patch, patch, w // patch, patch)
    x = x.movedim(-4, -5).movedim(-2, -4)  # (..., h, w, c, p, p)
    return x.reshape(*lead, (h // patch) * (w // patch), c * patch * patch)


def time_mask(times: Tensor) -> Tensor:
    """Block-causal attention, token i reads token j iff ``times[j] <= times[i]``: (B, L) -> (B, 1, L, L)."""
    return (times[:, None, :] <= times[:, :, None]).unsqueeze(1)


def frame_causal_attention(q: Tensor, k: Tensor, v: Tensor, frame_tokens: int) -> Tensor:
    """Block-causal attention over time-major frames of ``frame_tokens`` tokens each, a frame's
    queries reading the keys of that frame and the ones before it: what ``time_mask`` allows,
    computed one query frame at a time on just those keys, so the masked-out part (3/8 of the
    scores at 4 frames) is never computed.

    Args:
        q: (B, heads, Q, d) the queries of the last Q tokens (Q a multiple of ``frame_tokens``).
        k, v: (B, heads, L, d) every token's keys and values, L a multiple of ``frame_tokens``.
        frame_tokens: tokens N of one frame.

    Returns:
        (B, heads, Q, d), equal to ``scaled_dot_product_attention`` with ``time_mask`` on those
        queries (up to float rounding).
    """
    start = k.shape[2] - q.shape[2]
    out = []
    for s in range(0, q.shape[2], frame_tokens):
        end = start + s + frame_tokens
        queries = q[:, :, s : s + frame_tokens]
        out.append(F.scaled_dot_product_attention(queries, k[:, :, :end], v[:, :, :end]))
    return torch.cat(out, dim=2)


class Block(nn.Module):
    """A pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x)).

    Args:
        width: token width D.
        heads: attention heads (D divisible by them).
        mlp_ratio: MLP hidden units per unit of width.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        frame_tokens: int | None = None,
        queries: int | None = None,
    ) -> Tensor:
        """(B, L, D) -> (B, L, D), or (B, queries, D): the last ``queries`` tokens' outputs alone.

        Args:
            x: the tokens.
            mask: a boolean mask (B, 1, L, L) of the keys each query may read (None: all).
            frame_tokens: instead of ``mask``, block-causal attention over time-major frames of
                this many tokens (``frame_causal_attention``).
            queries: compute only the last this many tokens' outputs (a multiple of
                ``frame_tokens``; needs it); every token still serves as a key.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if frame_tokens is None:
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, L, D / heads)
        else:
            if queries is not None:
                q, x = q[:, :, n - queries :], x[:, n - queries :]
            attended = frame_causal_attention(q, k, v, frame_tokens)
        x = x + self.proj(attended.transpose(1, 2).reshape(b, x.shape[1], d))
        return x + self.mlp(self.norm2(x))


class Blocks(nn.Module):
    """Transformer blocks and a final layer norm over a token sequence (encoders, decoders, predictors).

    Args:
        width, depth, heads, mlp_ratio: the blocks' sizes.
    """

    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, frame_tokens: int | None = None, last: int | None = None
    ) -> Tensor:
        """(B, L, D) -> (B, L, D), or (B, last, D) with ``last``; ``mask`` and ``frame_tokens`` as
        ``Block``'s. With ``last`` (and ``frame_tokens``) the final block computes the last
        ``last`` tokens' outputs alone: all that a reader of the last frame needs."""
        for i, block in enumerate(self.blocks):
            x = block(x, mask, frame_tokens, last if i == len(self.blocks) - 1 else None)
        return self.norm(x)


class VideoTransformer(VideoEncoder):
    """The video transformer as a causal ``VideoEncoder``: (B, T, 3, H, W) -> (B, T, width, h, w).

    ``frame_features`` cuts each frame into patches; ``encode_frame_features`` embeds them and runs
    the blocks with block-causal attention, so step t's features read frames 0..t only. Token ``i``
    of a clip is patch ``i % N`` (row-major) of frame ``i // N``, N patches per frame.

    Args:
        config: its sizes.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.out_channels = config.width
        self.feature_size = config.feature_size
        self.embed = nn.Linear(config.tubelet * 3 * config.patch**2, config.width)
        self.register_buffer("space", grid_positions(config.feature_size, config.width), persistent=False)
        self.blocks = Blocks(config.width, config.depth, config.heads, config.mlp_ratio)

    def tokens(self, patches: Tensor) -> Tensor:
        """Embedded tokens with positions: patches (B, T, N, 3 p^2) -> (B, T N, D), time-major."""
        b, t, n, _ = patches.shape
        k = self.config.tubelet
        padded = F.pad(patches, (0, 0, 0, 0, k - 1, 0))  # (B, k - 1 + T, N, 3 p^2): zeros before
        tubes = torch.cat([padded[:, j : j + t] for j in range(k)], dim=-1)  # oldest frame first
        time = sincos(torch.arange(t), self.config.width).to(patches.device)  # (T, D)
        x = self.embed(tubes) + self.space + time[:, None]  # (B, T, N, D)
        return x.reshape(b, t * n, -1)

    def run(self, tokens: Tensor, keep: Tensor | None = None, causal: bool = True) -> Tensor:
        """The blocks over all tokens (B, T N, D), or over the subset of them ``keep`` (B, L) indexes.

        Returns:
            (B, L, D) output tokens in the order of ``keep`` (all tokens, time-major, without it).
        """
        if keep is None:
            return self.blocks(tokens, frame_tokens=self.config.patches) if causal else self.blocks(tokens)
        x = tokens.gather(1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
        mask = time_mask(torch.div(keep, self.config.patches, rounding_mode="floor")) if causal else None
        return self.blocks(x, mask)

    def encode_tokens(self, frames: Tensor, keep: Tensor | None = None, causal: bool = True) -> Tensor:
        """Output tokens of a clip, or of its tokens ``keep``: (B, T, 3, H, W), (B, L) -> (B, L, D)."""
        return self.run(self.tokens(patchify(frames, self.config.patch)), keep, causal)

    def frame_features(self, frames: Tensor) -> Tensor:
        """Each frame's patches: (M, 3, H, W) -> (M, N, 3 patch^2)."""
        return patchify(frames, self.config.patch)

    def encode_frame_features(self, features: Tensor) -> Tensor:
        """Causal encoding of patches (B, T, N, 3 patch^2) -> feature maps (B, T, D, h, w)."""
        b, t = features.shape[:2]
        out = self.run(self.tokens(features))  # (B, T N, D)
        return out.view(b, t, *self.feature_size, -1).permute(0, 1, 4, 2, 3)

    def encode(self, frames: Tensor) -> Tensor:
        """Feature maps after each frame: (B, T, 3, H, W) in [0, 1] -> (B, T, width, h, w)."""
        return self.encode_frame_features(self.frame_features(frames))

    def encode_last(self, features: Tensor) -> Tensor:
        """The feature map after the last frame alone, from patches (B, T, N, 3 patch^2) ->
        (B, width, h, w): ``encode_frame_features(features)[:, -1]`` (up to float rounding), with
        the final block run on the last frame's tokens only."""
        n = self.config.patches
        out = self.blocks(self.tokens(features), frame_tokens=n, last=n)  # (B, N, D)
        return out.view(features.shape[0], *self.feature_size, -1).permute(0, 3, 1, 2)

    def forward(self, frames: Tensor) -> Tensor:
        """The features after the last frame: (B, 3, H, W) or (B, T, 3, H, W) -> (B, width, h, w)."""
        return self.encode_last(self.frame_features(frames if frames.dim() == 5 else frames.unsqueeze(1)))

    def encode_windows(self, frames: Tensor, windows: Tensor) -> Tensor:
        """``VideoEncoder.encode_windows`` by ``encode_last``: (M, 3, H, W), (B, k) -> (B, D, h, w)."""
        return self.encode_last(self.frame_features(frames)[windows])
