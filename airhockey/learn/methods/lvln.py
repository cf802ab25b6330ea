"""``lvln``: the location-dependent video ladder network of Leuschner and Scheffczyk 2020 (L-VLN),
predicting frames one at a time.

A convolutional encoder halves the frame at each of its blocks; a lateral ConvGRU connection at
each resolution carries what moves over time (the deeper ones end in location-dependent
convolutions); a decoder of upsampling blocks climbs back to the frame's size, taking in each
lateral connection on the way. Trained as in the paper's section 4.1: context frames go in, each
step predicts the next frame, and past the context the predictions are fed back (5 context frames
-> 3 predicted); the loss is a weighted sum of DSSIM, L1 and L2 whose weights sum to 1 (section 4).
Its features for classifiers are the ConvGRU hidden states (section 5).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airhockey.learn.config import ClipCount, FrameCount, MovingThreshold, MovingWeight
from airhockey.learn.methods.next_frame import NextFrame
from airhockey.learn.nn.convgru import ConvGRU
from airhockey.learn.nn.convgru import State as GRUState
from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.learn.nn.metrics import moving_mask
from airhockey.learn.nn.predictor import StepPredictor
from airhockey.ranges import Range, check_fields

OUTPUTS = ("residual", "mask", "image")
"""How the network's last layer makes the predicted frame (``LVLNConfig.output``)."""
LadderState = list[list[GRUState]]
"""The hidden states of every lateral ConvGRU stack, deepest last: ``[level][layer]`` -> (B, C, h, w)."""


@dataclass(frozen=True)
class LVLNConfig:
    """Settings of the ``lvln`` method: the ladder's sizes, its context and predicted frames, its loss."""

    image_size: tuple[Annotated[int, Range(1, 4096)], Annotated[int, Range(1, 4096)]] = (64, 64)
    """Frame height and width in pixels (1-4,096), each divisible by 2 ** len(channels); set from the data."""
    channels: tuple[Annotated[int, Range(1, 1024)], ...] = (8, 16, 32)
    """Channels of each encoder block (1-1,024, 1 to 8 blocks); each block halves the resolution
    (L-VLN: ResNet-18's four stages)."""
    hidden_channels: tuple[Annotated[int, Range(1, 1024)], ...] | None = None
    """ConvGRU channels at each block's resolution (1-1,024), shallowest first; None: the same as
    ``channels``."""
    gru_layers: Annotated[int, Range(1, 16)] = 1
    """Stacked ConvGRUs in each lateral connection, 1-16 (L-VLN: 3)."""
    location_levels: Annotated[int, Range(0, 8)] = 2
    """Deepest lateral connections with a location-dependent output convolution (L-VLN: 2 of 4)."""
    location_channels: Annotated[int, Range(0, 256)] = 4
    """Learned per-position maps each location-dependent convolution reads beside its input, 0-256."""
    kernel_size: Annotated[int, Range(1, 15)] = 3
    """Side of the ConvGRU gate convolutions: odd, 1-15."""
    output: str = "residual"
    """``residual``: the last frame plus a predicted change; ``mask``: a predicted image composited over
    the last frame through a predicted mask (as ``next_frame``); ``image``: the image alone (L-VLN)."""
    frames_in: FrameCount = 5
    """Context frames read before the first fed-back prediction, 1-1,024 (L-VLN section 4.1: 5)."""
    frames_predicted: FrameCount = 3
    """Frames predicted past the context frames, the later ones from fed-back predictions, 1-1,024
    (L-VLN: 3)."""
    clip_stride: FrameCount = 4
    """Frames between the starts of successive training and validation clips of an episode (1-1,024)."""
    dssim_weight: Annotated[float, Range(0, 1000)] = 0.02
    """Weight of DSSIM, (1 - SSIM) / 2, in the loss (0-1,000); the three weights are scaled to sum to 1."""
    l1_weight: Annotated[float, Range(0, 1000)] = 0.02
    """Weight of the mean absolute error in the loss, 0-1,000."""
    l2_weight: Annotated[float, Range(0, 1000)] = 0.96
    """Weight of the mean squared error in the loss, 0-1,000."""
    moving_weight: MovingWeight = 2.0
    """Extra weight of moving pixels in the L1 and L2 terms (theirs is 1 + moving_weight, the rest 1),
    0-1,000."""
    moving_threshold: MovingThreshold = 0.05
    """Change in [0, 1) units that makes a pixel moving, in the loss weights and the metrics."""
    feature_channel_stride: Annotated[int, Range(1, 1024)] = 4
    """Classifier features: every this-many-th channel of the shallower ConvGRU states (all the
    deepest's), 1-1,024."""
    mean_frame_clips: ClipCount = 512
    """Training clips, evenly spread, whose frames average into the mean-frame baseline (1 to 10^6)."""

    def __post_init__(self) -> None:
        check_fields(self)
        levels = len(self.channels)
        if not 1 <= levels <= 8 or len(self.hidden) != levels:
            raise ValueError(
                "channels and hidden_channels need one entry per level, 1 to 8 levels, "
                f"got {self.channels} and {self.hidden_channels}"
            )
        factor = 2**levels
        if any(side % factor for side in self.image_size):
            raise ValueError(
                f"image_size {tuple(self.image_size)} must be divisible by {factor} (2 ** levels)"
            )
        if self.location_levels > levels:
            raise ValueError(f"location_levels must be in 0-{levels}, got {self.location_levels}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        weights = (self.dssim_weight, self.l1_weight, self.l2_weight)
        if sum(weights) <= 0:
            raise ValueError(f"dssim_weight, l1_weight and l2_weight must not all be 0, got {weights}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")

    @property
    def hidden(self) -> tuple[int, ...]:
        """The ConvGRU channels of each level (``hidden_channels``, or ``channels`` where that is None)."""
        return tuple(self.hidden_channels or self.channels)

    @property
    def loss_weights(self) -> tuple[float, float, float]:
        """The DSSIM, L1 and L2 weights scaled to sum to 1 (L-VLN section 4: so that their ratio
        can change without changing the effective learning rate)."""
        total = self.dssim_weight + self.l1_weight + self.l2_weight
        return self.dssim_weight / total, self.l1_weight / total, self.l2_weight / total

    @property
    def clip_length(self) -> int:
        """Frames in a training clip: the context frames and the frames predicted after them."""
        return self.frames_in + self.frames_predicted

    def level_size(self, level: int) -> tuple[int, int]:
        """Height and width of the feature maps of encoder block ``level`` (0: half the frame)."""
        return self.image_size[0] >> (level + 1), self.image_size[1] >> (level + 1)


class LadderEncoder(VideoEncoder):
    """The convolutional encoder and the lateral ConvGRUs: frames -> the hidden states at each resolution.

    ``encode`` gives the classifier features of L-VLN section 5: all channels of the deepest
    ConvGRU's state and every ``feature_channel_stride``-th channel of the shallower ones, those
    average-pooled to the deepest state's size, concatenated as channels.
    """

    def __init__(self, config: LVLNConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(c_out, c_out, 3, padding=1),
                nn.LeakyReLU(0.1),
            )
            for c_in, c_out in itertools.pairwise((3, *config.channels))
        )
        self.grus = nn.ModuleList(
            ConvGRU(c, (h,) * config.gru_layers, config.kernel_size)
            for c, h in zip(config.channels, config.hidden, strict=True)
        )
        stride = config.feature_channel_stride
        self.out_channels = config.hidden[-1] + sum(len(range(0, h, stride)) for h in config.hidden[:-1])
        self.feature_size = config.level_size(len(config.channels) - 1)

    def ladder(
        self, frames: Tensor, state: LadderState | None = None
    ) -> tuple[list[Tensor], list[Tensor], LadderState]:
        """Runs the encoder blocks on each frame and the lateral ConvGRUs over time.

        Args:
            frames: (B, T, 3, H, W) in [0, 1], the frames after those ``state`` has seen.
            state: the ConvGRU states to continue from, or None at a sequence's start.

        Returns:
            Each level's top ConvGRU hidden states [(B, T, C_hidden_l, H / 2^(l+1), W / 2^(l+1))]
            and its block's outputs [(B T, C_l, H / 2^(l+1), W / 2^(l+1))], shallowest first, and
            the new state of every ConvGRU.
        """
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1)  # (B T, 3, H, W)
        hidden, blocks, new_state = [], [], []
        for level, (block, gru) in enumerate(zip(self.blocks, self.grus, strict=True)):
            x = block(x)  # (B T, C_l, H / 2^(l+1), W / 2^(l+1))
            h, s = gru(x.unflatten(0, (b, t)), None if state is None else state[level])
            hidden.append(h)
            blocks.append(x)
            new_state.append(s)
        return hidden, blocks, new_state

    def features(self, hidden: list[Tensor]) -> Tensor:
        """The classifier features from ``ladder``'s hidden states: -> (B, T, out_channels, h, w)."""
        b, t = hidden[-1].shape[:2]
        parts = [hidden[-1].flatten(0, 1)]  # (B T, C_deep, h, w)
        for level, h in enumerate(hidden[:-1]):
            pooled = F.avg_pool2d(
                h[:, :, :: self.config.feature_channel_stride].flatten(0, 1), 2 ** (len(hidden) - 1 - level)
            )
            parts.append(pooled)
        return torch.cat(parts, dim=1).unflatten(0, (b, t))

    def encode(self, frames: Tensor) -> Tensor:
        """The ConvGRU features after each frame: (B, T, 3, H, W) in [0, 1] -> (B, T, C, h, w)."""
        return self.features(self.ladder(frames)[0])


class LocationConv2d(nn.Module):
    """A convolution that also reads learned per-position maps, so that its response depends on where
    it is (Azizi et al. 2018's location-dependent convolution, as L-VLN's deeper lateral blocks use).

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        size: (h, w) of the input maps, fixed: the learned maps have that size.
        location_channels: learned maps, initialised at zero (the layer starts as a plain convolution).
    """

    def __init__(
        self, in_channels: int, out_channels: int, size: tuple[int, int], location_channels: int
    ) -> None:
        super().__init__()
        self.location = nn.Parameter(torch.zeros(1, location_channels, *size))
        self.conv = nn.Conv2d(in_channels + location_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, h, w) -> (N, C_out, h, w)."""
        return self.conv(torch.cat([x, self.location.expand(x.shape[0], -1, -1, -1)], dim=1))


class UpBlock(nn.Sequential):
    """L-VLN's decoder block: normalisation, ReLU, convolution, pixel shuffle (x2), convolution.

    Group normalisation over each frame's channels (one group per 4 channels) stands in for batch
    normalisation, whose statistics would mix frames of other clips and time steps into a prediction.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.GroupNorm(max(1, in_channels // 4), in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1),
            nn.PixelShuffle(2),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )


class LVLNModel(StepPredictor):
    """The location-dependent video ladder network (Leuschner and Scheffczyk 2020, sections 3 and 4.1),
    on a CPU budget.

    At step t: the encoder's blocks read frame t, the lateral ConvGRUs update their states, each
    lateral connection's output convolution (location-dependent in the deepest ``location_levels``)
    reads its ConvGRU's state, and the decoder climbs from the deepest connection to the frame's
    size, concatenating each shallower connection's output on the way; a last convolution reading
    the decoder's map and frame t gives the prediction of frame t + 1. Frames after t never reach it.
    """

    def __init__(self, config: LVLNConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = LadderEncoder(config)
        levels = len(config.channels)
        self.laterals = nn.ModuleList()
        for level, (c, h) in enumerate(zip(config.channels, config.hidden, strict=True)):
            if level >= levels - config.location_levels:
                self.laterals.append(
                    LocationConv2d(h + c, c, config.level_size(level), config.location_channels)
                )
            else:
                self.laterals.append(nn.Conv2d(h + c, c, 3, padding=1))
        # Up block l brings level l's map to level l - 1's size (the shallowest: to the frame's); below
        # the deepest it reads its lateral connection's output beside the map from the level under it.
        self.ups = nn.ModuleList(
            UpBlock(c * (1 if level == levels - 1 else 2), config.channels[max(level - 1, 0)])
            for level, c in enumerate(config.channels)
        )
        self.output = nn.Conv2d(config.channels[0] + 3, 4 if config.output == "mask" else 3, 3, padding=1)
        with torch.no_grad():
            if config.output == "mask":
                # The mask's logit starts at -3 (5% open): an untrained model about copies the last frame.
                self.output.bias[:1].fill_(-3.0)
            elif config.output == "residual":
                # No change at first: an untrained model copies the last frame, and every weight still
                # gets a gradient (a mask can close for good: its sigmoid's gradient vanishes).
                self.output.weight.zero_()
                self.output.bias.zero_()

    def advance(self, frames: Tensor, state: LadderState | None = None) -> tuple[Tensor, LadderState]:
        """Reads frames and predicts, after each, the frame that follows it.

        Args:
            frames: (B, T, 3, H, W) in [0, 1], the frames after those ``state`` has seen.
            state: the ConvGRU states after earlier frames, or None at a sequence's start.

        Returns:
            Predictions (B, T, 3, H, W) in [0, 1], ``[:, t]`` predicting the frame after
            ``frames[:, t]``, and the state after the last frame.
        """
        b, t = frames.shape[:2]
        hidden, blocks, state = self.encoder.ladder(frames, state)
        # Each lateral convolution reads its ConvGRU's state and, as a ladder network's skip, the
        # block's features of the current frame: (B T, C_l, H / 2^(l+1), W / 2^(l+1)).
        lateral = [
            conv(torch.cat([h.flatten(0, 1), x], dim=1))
            for conv, h, x in zip(self.laterals, hidden, blocks, strict=True)
        ]
        x = self.ups[-1](lateral[-1])
        for level in range(len(lateral) - 2, -1, -1):
            x = self.ups[level](torch.cat([lateral[level], x], dim=1))  # twice the size
        current = frames.flatten(0, 1)  # (B T, 3, H, W)
        out = self.output(torch.cat([x, current], dim=1)).unflatten(0, (b, t))  # (B, T, 3 | 4, H, W)
        if self.config.output == "residual":
            # Unclamped in training (clamping would cut the gradient of overshooting pixels); the
            # metrics and predict_episode clamp to [0, 1].
            return frames + out, state
        if self.config.output == "image":
            return torch.sigmoid(out), state
        mask, image = torch.sigmoid(out[:, :, :1]), torch.sigmoid(out[:, :, 1:])
        return frames + mask * (image - frames), state


def ladder_loss(pred: Tensor, target: Tensor, previous: Tensor, config: LVLNConfig) -> Tensor:
    """L-VLN's loss: DSSIM, L1 and L2 weighted by ``config.loss_weights`` (which sum to 1).

    The L1 and L2 terms weigh moving pixels ``1 + moving_weight`` times the rest.

    Args:
        pred, target, previous: (N, 3, H, W): predictions, true frames, and the true frames before.
    """
    weight = 1.0 + config.moving_weight * moving_mask(previous, target, config.moving_threshold).to(
        pred.dtype
    )
    error = pred - target
    dssim, l1, l2 = config.loss_weights
    loss = l1 * (weight * error.abs()).mean() + l2 * (weight * error**2).mean()
    if dssim:
        loss = loss + dssim * ((1.0 - fast_ssim(pred, target)) / 2).mean()
    return loss


def fast_ssim(pred: Tensor, target: Tensor, window: int = 7) -> Tensor:
    """SSIM for the loss: as ``metrics.ssim`` but with a 7x7 uniform window (scikit-image's default),
    several times cheaper on a CPU; validation reports ``metrics.ssim`` (11x11 Gaussian).

    The window's means are a depthwise convolution, which on a CPU runs forward and backward
    several times faster than ``avg_pool2d``. Variances and covariance come from frames shifted
    by the target's mean per frame and channel, so that float32 gives the float64 value to about
    1e-6 also on flat regions.

    Args:
        pred, target: (N, C, H, W) in [0, 1], H and W at least ``window``.

    Returns:
        (N,) SSIM per frame.
    """
    c1, c2 = 0.01**2, 0.03**2
    # Statistics of frames shifted by the target's mean: E[x^2] - E[x]^2 cancels badly in float32
    # on flat regions far from 0 (a light table), and a shift changes no variance or covariance.
    shift = target.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    p, t = pred - shift, target - shift
    stacked = torch.cat([p, t, p * p, t * t, p * t], dim=1)  # (N, 5C, H, W)
    groups = stacked.shape[1]
    box = stacked.new_full((groups, 1, window, window), 1.0 / window**2)
    mu_p, mu_t, pp, tt, pt = F.conv2d(stacked, box, groups=groups).chunk(5, dim=1)  # (N, C, H', W') each
    # Clamped: rounding can still leave E[x^2] - E[x]^2 slightly negative.
    var_p, var_t = (pp - mu_p**2).clamp_min(0), (tt - mu_t**2).clamp_min(0)
    cov = pt - mu_p * mu_t
    mu_p, mu_t = mu_p + shift, mu_t + shift
    s = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return s.flatten(1).mean(dim=1)


class LVLN(NextFrame):
    """L-VLN (Leuschner and Scheffczyk 2020, sections 3, 4.1 and 5), trained from scratch, on a CPU budget.

    Samples, validation (one-step and 3-frame rollout MSE, PSNR, SSIM, moving-pixel MSE against
    copy-last and the mean frame) and ``predict_episode`` are ``next_frame``'s, whose model has the
    same ``advance``/``rollout`` interface. Deviations from the paper:

    - The encoder is small and trained from scratch (``channels``: 3 blocks of two convolutions,
      the first strided) instead of a frozen ImageNet ResNet-18: no pretrained weights can be
      downloaded here, and 31 M parameters do not train on 2 CPU cores.
    - One ConvGRU per lateral connection (``gru_layers``; the paper: 3), with few channels.
    - Location-dependent convolution as a convolution that also reads learned per-position maps
      (``LocationConv2d``), zero at the start.
    - Group normalisation instead of batch normalisation in the decoder blocks, so that no
      statistic mixes other clips or later frames into a prediction (train and eval agree).
    - The last up block reaches the frame's size and a convolution reads frame t beside it (the
      paper's model predicted at half size and upsampled, which left a grid pattern, section 4.1).
    - The output is the last frame plus a predicted change (``output=residual``; ``image`` gives the
      paper's image alone, ``mask`` ``next_frame``'s mask and image): a 5-pixel puck on a static
      table is otherwise cheapest to predict as background. With this loss a mask closes for
      good (L1 and DSSIM push every static pixel's mask shut, and a shut sigmoid passes no
      gradient), and the model stays at copy-last.
    - Every step of a clip is scored, the context steps too: each is a prediction from a shorter
      context, which the paper says the model is independent of (section 4.1).
    - L1 and L2 weigh moving pixels more (``moving_weight``), for the same reason as ``next_frame``.
    - Loss weights DSSIM 0.02, L1 0.02, L2 0.96 (the paper: mostly DSSIM, "moderate" L1 and L2). On
      a static table with a 5-pixel puck the DSSIM and L1 terms and their gradients are one to two
      orders of magnitude above L2, and larger weights hold the model at copy-last
      (``docs/pretext_methods.md`` has the runs).
    - Classifier features: the deepest ConvGRU's state and a channel subsample of the others,
      average-pooled to the deepest size (the paper sampled them; pooling keeps one feature map).
    """

    name = "lvln"
    summary = "video ladder network: conv encoder, ConvGRU laterals, pixel-shuffle decoder (DSSIM+L1+L2)"
    source = "Leuschner and Scheffczyk 2020, sections 3, 4.1 and 5"
    config_class = LVLNConfig  # type: ignore[assignment]
    log_metrics = ("val_moving_mse", "val_rollout_mse", "baseline_copy_last_mse")

    def build_model(self) -> LVLNModel:  # type: ignore[override]
        return LVLNModel(self.config)  # type: ignore[arg-type]

    def build_encoder(self) -> LadderEncoder:  # type: ignore[override]
        return LadderEncoder(self.config)  # type: ignore[arg-type]

    def loss(self, model: LVLNModel, clip: Tensor) -> Tensor:  # type: ignore[override]
        """The model reads the context frames of each clip (B, L, 3, H, W), predicts every next frame and
        feeds its predictions back past them: frames 1..L-1 are targets."""
        c = self.config
        pred = model(clip[:, : c.frames_in], future=c.frames_predicted - 1)  # (B, L - 1, 3, H, W)
        return ladder_loss(pred.flatten(0, 1), clip[:, 1:].flatten(0, 1), clip[:, :-1].flatten(0, 1), c)  # type: ignore[arg-type]
