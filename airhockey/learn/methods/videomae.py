"""``videomae``: masked video modelling with tube masking (Tong et al. 2022).

A clip of T frames is cut into patch tokens (``nn.transformer.VideoTransformer``); a tube mask
hides the same ``mask_ratio`` of the patch positions in every frame, so that a hidden patch cannot
be copied from the same place in a neighbouring frame. The encoder reads the visible tokens only;
a light decoder reads them with a learned mask token at every hidden place and predicts the
pixels of the hidden patches, optionally normalised per patch (``norm_pix_loss``); the loss is
the mean squared error on the hidden patches only.

What the masked methods share lives here too: clips with a tube mask drawn per sample
(``MaskedClips``), the mask (``tube_mask``) and the token indices it keeps or hides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from airhockey.learn.config import FrameCount
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.methods.base import PretextMethod
from airhockey.learn.nn.encoder import PretextModel
from airhockey.learn.nn.transformer import (
    Blocks,
    TransformerConfig,
    VideoTransformer,
    grid_positions,
    patchify,
    sincos,
)
from airhockey.ranges import Range, check_fields

MaskRatio = Annotated[float, Range(0, 1, low_open=True, high_open=True)]
"""The fraction of patch positions a mask hides, in (0, 1)."""
BASELINE_CLIPS = 256
"""Training clips, evenly spread, whose targets average into the mean-patch baseline."""


def tube_mask(
    rng: np.random.Generator, patches: int, ratio: float, blocks: int = 0, grid: tuple[int, int] = (0, 0)
) -> NDArray[np.int64]:
    """The visible patch positions of a tube mask (the same positions hidden in every frame).

    Exactly ``round((1 - ratio) * patches)`` positions stay visible (at least 1, at most
    ``patches - 1``). With ``blocks`` > 0, that many random rectangles of the ``grid`` are hidden
    first (V-JEPA's multi-block masks, Bardes et al. 2024): positions outside them are the first to
    stay visible; otherwise the visible positions are a uniform random draw (VideoMAE's).

    Args:
        rng: the generator of the draw.
        patches: patch positions N of a frame (h * w of ``grid``).
        ratio: the fraction to hide, in (0, 1).
        blocks: rectangles to hide first; 0 for uniformly random positions.
        grid: (h, w) of the patch grid, needed with ``blocks``.

    Returns:
        (n_visible,) sorted int64 positions in [0, patches).
    """
    visible = int(np.clip(round((1 - ratio) * patches), 1, patches - 1))
    score = rng.random(patches)  # the lowest scores stay visible
    if blocks:
        h, w = grid
        hidden = np.zeros((h, w))
        for _ in range(blocks):
            bh, bw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
            y, x = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
            hidden[y : y + bh, x : x + bw] = 1.0
        score = score + hidden.reshape(-1)
    return np.sort(np.argsort(score, kind="stable")[:visible]).astype(np.int64)


def tube_tokens(positions: Tensor, frames: int, patches: int) -> Tensor:
    """Token indices of patch positions in every frame, time-major: (B, n) -> (B, frames n)."""
    times = torch.arange(frames, device=positions.device)[:, None] * patches  # (T, 1)
    return (times + positions[:, None, :]).flatten(1)


def hidden_positions(visible: Tensor, patches: int) -> Tensor:
    """The positions a tube mask hides, sorted: visible (B, n_v) -> (B, N - n_v)."""
    shown = torch.zeros(visible.shape[0], patches, dtype=torch.bool, device=visible.device)
    shown.scatter_(1, visible, True)
    order = torch.argsort(shown.to(torch.int8), dim=1, stable=True)  # hidden (0) first, in order
    return order[:, : patches - visible.shape[1]]


class MaskedClips(Dataset):
    """Clips of consecutive frames, each with a tube mask drawn from ``(seed, epoch, index)``.

    Item: ``clip`` (T, 3, H, W) float in [0, 1] and ``visible`` (n_visible,) int64, the sorted
    patch positions the mask leaves visible in every frame. Training datasets draw new masks each
    epoch (``set_epoch``); validation datasets keep epoch 0, so their masks never change.

    Args:
        episodes: the dataset (``EpisodeShards``, or anything with ``frames(i, start, stop)`` and
            ``table()["length"]``).
        ids: dataset-wide indices of the episodes to draw clips from.
        frames, stride: frames per clip, and between the starts of an episode's clips.
        grid: (h, w) patch grid of a frame.
        ratio, blocks: the mask's hidden fraction and rectangles (``tube_mask``).
        seed: seed of the masks.
    """

    def __init__(
        self,
        episodes: Any,
        ids: NDArray[np.int64],
        frames: int,
        stride: int,
        grid: tuple[int, int],
        ratio: float,
        blocks: int,
        seed: int,
    ) -> None:
        lengths = episodes.table()["length"]
        starts = [
            (e, s) for e in np.asarray(ids, np.int64) for s in range(0, int(lengths[e]) - frames + 1, stride)
        ]
        self.clips = np.asarray(starts, np.int64).reshape(-1, 2)
        """(n, 2): the episode and first frame of each clip."""
        self.episodes, self.frames = episodes, frames
        if hasattr(episodes, "close"):
            episodes.close()  # DataLoader workers open their own handles
        self.grid, self.ratio, self.blocks, self.seed, self.epoch = grid, ratio, blocks, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Draws the masks of epoch ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        visible = tube_mask(rng, self.grid[0] * self.grid[1], self.ratio, self.blocks, self.grid)
        episode, start = (int(v) for v in self.clips[i])
        clip = frames_to_tensor(self.episodes.frames(episode, start, start + self.frames))  # (T, 3, H, W)
        return {"clip": clip, "visible": torch.from_numpy(visible)}


def check_masking(encoder: TransformerConfig, width: int, heads: int, name: str) -> None:
    """Checks that a masked method's frames hold at least 2 patches and its decoder's (or
    predictor's) ``width`` divides by 4 and by its ``heads``.

    Raises:
        ValueError: naming the settings to change.
    """
    if encoder.patches < 2:
        raise ValueError(
            f"a mask needs at least 2 patches per frame: image_size {tuple(encoder.image_size)} with "
            f"patch {encoder.patch} gives 1; lower encoder.patch"
        )
    if width % heads or width % 4:
        raise ValueError(f"{name}_width ({width}) must be divisible by 4 and by {name}_heads ({heads})")


def token_positions(size: tuple[int, int], frames: int, width: int) -> Tensor:
    """Sine-cosine positions of every token of a clip, time-major: -> (frames h w, width)."""
    space = grid_positions(size, width)  # (N, width)
    time = sincos(torch.arange(frames), width)  # (T, width)
    return (time[:, None] + space).flatten(0, 1)


class TokenDecoder(nn.Module):
    """Visible tokens and mask tokens at the hidden places -> outputs at the hidden places.

    The visible tokens are mapped to ``width``, a learned mask token fills every hidden place,
    positions are added, full-attention blocks read the whole clip, and a linear head maps the
    hidden places' outputs to ``out_features``: VideoMAE's decoder and V-JEPA's predictor.

    Args:
        in_width: width of the visible tokens (the encoder's).
        width, depth, heads: the blocks' sizes.
        out_features: outputs per hidden token.
        grid: (h, w) patch grid of a frame.
    """

    def __init__(
        self, in_width: int, width: int, depth: int, heads: int, out_features: int, grid: tuple[int, int]
    ) -> None:
        super().__init__()
        self.grid = grid
        self.embed = nn.Linear(in_width, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = Blocks(width, depth, heads)
        self.head = nn.Linear(width, out_features)

    def forward(self, visible: Tensor, shown: Tensor, hidden: Tensor, frames: int) -> Tensor:
        """Outputs at the hidden tokens.

        Args:
            visible: (B, L_v, in_width) encoder outputs of the tokens ``shown`` (B, L_v) indexes.
            shown, hidden: (B, L_v) and (B, L_h) token indices, together every token of the clip.
            frames: T, frames in the clip.

        Returns:
            (B, L_h, out_features), in the order of ``hidden``.
        """
        width = self.mask_token.shape[0]
        positions = token_positions(self.grid, frames, width).to(visible.device)  # (T N, width)
        x = torch.cat(
            [self.embed(visible) + positions[shown], self.mask_token + positions[hidden]], dim=1
        )  # (B, L_v + L_h, width)
        return self.head(self.blocks(x)[:, shown.shape[1] :])


@dataclass(frozen=True)
class VideoMAEConfig:
    """Settings of the ``videomae`` method."""

    encoder: TransformerConfig = field(default_factory=TransformerConfig)
    """The video transformer's sizes (``encoder.*``)."""
    frames: FrameCount = 8
    """Frames T of a clip, 1-1,024."""
    clip_stride: FrameCount = 4
    """Frames between the starts of successive clips of an episode, 1-1,024."""
    mask_ratio: MaskRatio = 0.9
    """Fraction of the patch positions the tube mask hides, in (0, 1); at least one stays visible."""
    decoder_width: Annotated[int, Range(4, 4096)] = 32
    """Token width of the decoder, 4-4,096; divisible by 4 and by ``decoder_heads``."""
    decoder_depth: Annotated[int, Range(1, 64)] = 2
    """Decoder blocks, 1-64."""
    decoder_heads: Annotated[int, Range(1, 64)] = 2
    """Attention heads of each decoder block, 1-64."""
    norm_pix_loss: bool = True
    """Predict each hidden patch's pixels normalised by its own mean and standard deviation (the
    paper's default); False: the raw pixels."""
    causal: bool = True
    """Encode the visible tokens with the block-causal attention the classifiers use (True), or
    with full attention over the clip, as the paper does (False)."""

    def __post_init__(self) -> None:
        check_fields(self)
        check_masking(self.encoder, self.decoder_width, self.decoder_heads, "decoder")


def patch_targets(clip: Tensor, patch: int, normalise: bool) -> Tensor:
    """The pixels of every patch of a clip, optionally per-patch normalised: (B, T, 3, H, W) ->
    (B, T N, 3 patch^2), time-major (VideoMAE's targets; the paper's ``norm_pix_loss``)."""
    targets = patchify(clip, patch).flatten(1, 2)
    if normalise:
        mean = targets.mean(dim=-1, keepdim=True)
        var = targets.var(dim=-1, keepdim=True, correction=0)
        targets = (targets - mean) / (var + 1e-6).sqrt()
    return targets


class VideoMAEModel(PretextModel):
    """The video transformer encoder and VideoMAE's light decoder.

    Args:
        config: the method's settings.
    """

    def __init__(self, config: VideoMAEConfig) -> None:
        super().__init__()
        self.config = config
        e = config.encoder
        self.encoder = VideoTransformer(e)
        self.decoder = TokenDecoder(
            e.width,
            config.decoder_width,
            config.decoder_depth,
            config.decoder_heads,
            3 * e.patch**2,
            e.feature_size,
        )

    def forward(self, clip: Tensor, visible: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted pixels of the hidden patches of a clip under a tube mask.

        Args:
            clip: (B, T, 3, H, W) in [0, 1].
            visible: (B, n_v) patch positions the mask leaves visible.

        Returns:
            Predictions (B, T (N - n_v), 3 patch^2) and the hidden tokens' indices (B, T (N - n_v)).
        """
        t, n = clip.shape[1], self.config.encoder.patches
        shown = tube_tokens(visible, t, n)
        hidden = tube_tokens(hidden_positions(visible, n), t, n)
        features = self.encoder.encode_tokens(clip, shown, causal=self.config.causal)
        return self.decoder(features, shown, hidden, t), hidden


def gather_tokens(tokens: Tensor, index: Tensor) -> Tensor:
    """Tokens (B, L, F) at ``index`` (B, L') -> (B, L', F)."""
    return tokens.gather(1, index[..., None].expand(-1, -1, tokens.shape[-1]))


def masked_mse(pred: Tensor, targets: Tensor, hidden: Tensor) -> Tensor:
    """Squared error of each hidden token's prediction, averaged over its values: the targets of
    other tokens are never read.

    Args:
        pred: (B, L_h, F) predictions of the tokens ``hidden`` (B, L_h) indexes.
        targets: (B, L, F) targets of every token of the clip.

    Returns:
        (B, L_h).
    """
    return ((pred - gather_tokens(targets, hidden)) ** 2).mean(dim=-1)


class VideoMAE(PretextMethod[VideoMAEConfig]):
    """Masked video modelling, VideoMAE (Tong et al. 2022, sections 3-4).

    Deviations from the paper (docs/pretext_methods.md gives the reasons):

    - A small causal video transformer (8x8 patches, 1-frame tubelets, width 64, 4 blocks, 4
      heads) instead of ViT-B with 2x16x16 tubelets; clips of 8 frames read at every frame of
      their span, 64x64 pixels, instead of 16 frames sampled with a stride of 2 or 4 at 224x224.
    - The encoder attends block-causally in time (``causal``) by default, the attention that the
      classifiers use; ``causal=false`` is the paper's full attention.
    - The decoder has 2 blocks of width 32 (the paper: 4 of width 384, half the encoder's).
    - No augmentation (the paper's multi-scale crop and flip): the table is not left-right
      symmetric in its labels' sense and the objects are a few pixels.
    """

    name = "videomae"
    summary = "VideoMAE: tube-masked (90%) patches reconstructed from the visible ones (transformer)"
    source = "Tong et al. 2022, sections 3-4"
    config_class = VideoMAEConfig
    selection_metric = "val_loss"
    log_metrics = ("baseline_mean_patch_loss",)

    def build_model(self) -> VideoMAEModel:
        return VideoMAEModel(self.config)

    def build_encoder(self) -> VideoTransformer:
        return VideoTransformer(self.config.encoder)

    def samples(self, episodes: Any, ids: NDArray[np.int64], seed: int, training: bool) -> Dataset:
        c = self.config
        return MaskedClips(
            episodes, ids, c.frames, c.clip_stride, c.encoder.feature_size, c.mask_ratio, 0, seed
        )

    def errors(self, model: VideoMAEModel, batch: dict[str, Tensor]) -> Tensor:
        """Squared error of each hidden patch's prediction, averaged over its values: -> (B, L_h)."""
        c = self.config
        pred, hidden = model(batch["clip"], batch["visible"])
        return masked_mse(pred, patch_targets(batch["clip"], c.encoder.patch, c.norm_pix_loss), hidden)

    def loss(self, model: VideoMAEModel, batch: dict[str, Tensor]) -> Tensor:  # type: ignore[override]
        return self.errors(model, batch).mean()

    def baselines(self, train_set: Dataset, val_loader: DataLoader, device: torch.device) -> dict[str, float]:
        """The mean-patch predictor: each hidden patch predicted as the mean target at its place
        and time in the clip over up to ``BASELINE_CLIPS`` training clips (the best prediction
        that reads no visible patch)."""
        c = self.config
        n = len(train_set)  # type: ignore[arg-type]
        picks = np.unique(np.linspace(0, n - 1, min(n, BASELINE_CLIPS)).round().astype(int))
        mean = sum(
            patch_targets(train_set[int(i)]["clip"][None].double(), c.encoder.patch, c.norm_pix_loss)[0]
            for i in picks
        ) / len(picks)  # (T N, 3 p^2)
        total, count = 0.0, 0
        for batch in val_loader:
            clip, visible = batch["clip"].to(device), batch["visible"].to(device)
            t, patches = clip.shape[1], c.encoder.patches
            hidden = tube_tokens(hidden_positions(visible, patches), t, patches)
            targets = patch_targets(clip, c.encoder.patch, c.norm_pix_loss)
            guess = mean.float().to(device)[hidden]  # (B, L_h, 3 p^2)
            total += float(masked_mse(guess, targets, hidden).sum())
            count += hidden.numel()
        return {"baseline_mean_patch_loss": total / max(count, 1)}

    def evaluate(
        self, model: VideoMAEModel, val_loader: DataLoader, device: torch.device
    ) -> dict[str, float]:  # type: ignore[override]
        total, count = 0.0, 0
        for batch in val_loader:
            errors = self.errors(model, {k: v.to(device) for k, v in batch.items()})
            total, count = total + float(errors.sum()), count + errors.numel()
        return {"val_loss": total / max(count, 1)}

    def derived_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """``val_loss_vs_mean_patch``: the fraction of the mean-patch baseline's loss the model saves."""
        return {"val_loss_vs_mean_patch": 1.0 - metrics["val_loss"] / metrics["baseline_mean_patch_loss"]}

    def describe(self, metrics: dict[str, Any]) -> str:
        m = metrics
        return (
            f"val masked-patch loss {m['val_loss']:.5f} vs mean-patch {m['baseline_mean_patch_loss']:.5f} "
            f"({'normalised' if self.config.norm_pix_loss else 'raw'} pixels)"
        )
