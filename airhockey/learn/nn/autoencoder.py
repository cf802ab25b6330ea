"""The ConvLSTM autoencoder of Han et al. 2021 (section 4.3): a frame encoder, a decoder, a causal
3D-conv output.

``ConvLSTMAutoencoder`` predicts the next frame of a video (the ``next_frame`` method,
``learn.methods.next_frame``); its ``FrameEncoder`` (stem + two ConvLSTM layers) is the shared
encoder that classifiers reuse and that other methods build on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from airhockey.learn.config import EncoderConfig
from airhockey.learn.nn.convlstm import ConvLSTM, State
from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.learn.nn.predictor import StepPredictor


class FrameEncoder(VideoEncoder):
    """Stem and two stacked ConvLSTM layers: frames -> a spatial representation (the shared encoder).

    Works on one frame (T=1, from a zero state) as on a sequence. ``forward`` returns the top
    layer's hidden state after the last frame, ``(B, hidden_channels, *feature_size)``: the
    representation the classifier reads.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_size = config.feature_size
        channels = (3, *config.stem_channels)
        self.stem = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.1))
            for c_in, c_out in itertools.pairwise(channels)
        )
        self.lstm = ConvLSTM(channels[-1], (config.hidden_channels,) * 2, config.kernel_size)
        self.out_channels = config.hidden_channels

    def stem_features(self, frames: Tensor) -> list[Tensor]:
        """The frames and each stem level's output: (N, 3, H, W) -> [(N, 3, H, W), (N, C_1, H/2, W/2) ...]."""
        features = [frames]
        for layer in self.stem:
            features.append(layer(features[-1]))
        return features

    def encode(self, frames: Tensor) -> Tensor:
        """The top layer's hidden state after each frame: (B, T, 3, H, W) in [0, 1] -> (B, T, C, h, w)."""
        b, t = frames.shape[:2]
        features = self.frame_features(frames.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, C_stem, h, w)
        return self.encode_frame_features(features)

    def frame_features(self, frames: Tensor) -> Tensor:
        """The stem's output: (N, 3, H, W) -> (N, C_stem, h, w)."""
        return self.stem_features(frames)[-1]

    def encode_frame_features(self, features: Tensor) -> Tensor:
        """The ConvLSTM layers over the stem's outputs: (B, T, C_stem, h, w) -> (B, T, C, h, w)."""
        return self.lstm(features)[0]


class CausalConv3d(nn.Module):
    """A 3D convolution whose temporal kernel sees only the current and earlier time steps.

    Output step t reads input steps t - time_kernel + 1 .. t: the sequence is padded on the past
    side only, with zeros at the start or with the ``history`` of steps before this chunk.
    """

    def __init__(self, in_channels: int, out_channels: int, time_kernel: int, space_kernel: int = 3) -> None:
        super().__init__()
        self.time_kernel = time_kernel
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            (time_kernel, space_kernel, space_kernel),
            padding=(0, space_kernel // 2, space_kernel // 2),
        )

    def forward(self, x: Tensor, history: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Applies the convolution to a chunk of a sequence.

        Args:
            x: (B, C_in, T, H, W).
            history: the last ``time_kernel - 1`` input steps before this chunk, (B, C_in, k-1, H, W),
                or None at the start of a sequence.

        Returns:
            The output (B, C_out, T, H, W) and the history to pass with the next chunk.
        """
        k = self.time_kernel - 1
        if history is None:
            history = x.new_zeros(*x.shape[:2], k, *x.shape[3:])
        padded = torch.cat([history, x], dim=2)  # (B, C_in, k + T, H, W)
        return self.conv(padded), padded[:, :, padded.shape[2] - k :]


@dataclass
class AutoencoderState:
    """Everything the autoencoder carries from one time step to the next."""

    encoder: list[State]
    decoder: list[State]
    output_history: Tensor
    """The output layer's inputs at the last ``output_time_kernel - 1`` steps, (B, C, k - 1, H', W')."""


class ConvLSTMAutoencoder(StepPredictor):
    """Next-frame predictor: frame encoder, two decoder ConvLSTM layers, upsampling head, causal 3D conv.

    At every step t the encoder reads frame t, the decoder reads the encoder's top hidden state,
    the head brings the decoder's hidden state up to half the frame size, and the causal 3D
    convolution over the last ``output_time_kernel`` steps of those maps (and of the frames, as
    2x2 pixel blocks) gives an image and, with ``composite``, a mask that says where the image
    replaces frame t in the prediction of frame t+1. Frames after t never reach it. Past the
    given frames, predictions are fed back as inputs (as in Leuschner and Scheffczyk 2020).

    Deviations from Han et al. 2021 (section 4.3) and the code they adapt (Nielsen 2020), all so
    that training gets somewhere in minutes on 2 CPU cores:

    - A stem of strided convolutions before the encoder's ConvLSTMs, so that they run at 1/4
      resolution (16x16 for 64x64 frames), and an upsampling head (transposed convolutions)
      after the decoder's; ``stem_channels=()`` removes both and runs everything at full size.
    - U-Net skips: the head reads the stem's features of the current frame at each level, and
      the output layer reads the current frame itself, so that the 16x16 ConvLSTM state need
      not carry the exact pixels of a 5-pixel puck, only how the scene moves.
    - Pixel shuffle: the 3D conv runs at half the frame size and outputs each pixel's 2x2 block
      (Shi et al. 2016), which on a CPU is faster than full-size convolutions with few channels.
    - The decoder runs in step with the encoder (reading the encoder's hidden state at every
      step) instead of unrolling from the encoder's final state alone: every step of a clip
      yields a next-frame prediction, and further frames come from feeding predictions back.
    - The 3D-conv output layer is causal: its temporal kernel spans the current and earlier steps
      only (Nielsen's spans one step; a centred wider kernel would leak the future).
    - The output composites a predicted image over the last frame through a predicted mask
      (as in Finn et al. 2016), instead of being the sigmoid image alone (``composite=False``
      restores that). The mask starts almost closed, so an untrained model starts near copying
      the last frame rather than near grey; static pixels stay exact by keeping the mask closed;
      and a small object on a plain background cannot fade into the background, which is where
      MSE pulls a sigmoid image of a small object.
    - ConvLSTM cells without peephole terms; forget-gate bias initialised to 1.

    Args:
        encoder: the frame encoder's sizes (the decoder mirrors them).
        output_time_kernel: time steps the causal 3D-conv output layer spans (the current one and
            those before).
        composite: predict a mask and an image composited over the last frame (True), or the image alone.
    """

    def __init__(self, encoder: EncoderConfig, output_time_kernel: int = 2, composite: bool = True) -> None:
        super().__init__()
        config = encoder
        self.composite = composite
        self.encoder = FrameEncoder(config)
        self.decoder = ConvLSTM(config.hidden_channels, (config.hidden_channels,) * 2, config.kernel_size)
        # The head climbs from the decoder's resolution up to half the frame size, reading at each
        # level the stem's features of the current frame (U-Net skips). There the causal 3D conv
        # reads the frame itself as 2x2 pixel blocks (pixel unshuffle) and outputs each pixel's
        # 2x2 block (pixel shuffle): full-resolution output without full-resolution convolutions.
        stem = config.stem_channels
        self.ups = nn.ModuleList()
        c_in = config.hidden_channels
        for level in range(len(stem) - 1, 0, -1):
            up = nn.ConvTranspose2d(c_in + stem[level], stem[level - 1], 4, stride=2, padding=1)
            self.ups.append(nn.Sequential(up, nn.LeakyReLU(0.1)))
            c_in = stem[level - 1]
        self.block = 2 if stem else 1
        r2 = self.block**2
        self.output = CausalConv3d(c_in + 3 * r2, (4 if composite else 3) * r2, output_time_kernel)
        if composite:
            with torch.no_grad():
                # The mask's logits (the first channel after the pixel shuffle) start at -3: 5% open.
                self.output.conv.bias[:r2].fill_(-3.0)

    def advance(
        self, frames: Tensor, state: AutoencoderState | None = None
    ) -> tuple[Tensor, AutoencoderState]:
        """Reads frames and predicts, after each, the frame that follows it.

        Args:
            frames: (B, T, 3, H, W) in [0, 1], the frames after those ``state`` has seen.
            state: what the model carries from earlier frames, or None at a sequence's start.

        Returns:
            Predictions (B, T, 3, H, W) in [0, 1], where ``[:, t]`` predicts the frame after
            ``frames[:, t]``, and the state after the last frame.
        """
        b, t = frames.shape[:2]
        skips = self.encoder.stem_features(frames.flatten(0, 1))  # [(B T, 3, H, W), ..., (B T, C, h, w)]
        encoded, enc_states = self.encoder.lstm(
            skips[-1].unflatten(0, (b, t)), state.encoder if state else None
        )  # (B, T, C, h, w)
        decoded, dec_states = self.decoder(encoded, state.decoder if state else None)  # (B, T, C, h, w)
        x = decoded.flatten(0, 1)  # (B T, C, h, w)
        for up, skip in zip(self.ups, reversed(skips[2:]), strict=True):
            x = up(torch.cat([x, skip], dim=1))  # twice the size
        blocks = F.pixel_unshuffle(frames.flatten(0, 1), self.block)  # (B T, 3 r^2, H / r, W / r)
        maps = torch.cat([x, blocks], dim=1).unflatten(0, (b, t))  # (B, T, C + 3 r^2, H / r, W / r)
        out, history = self.output(maps.transpose(1, 2), state.output_history if state else None)
        out = F.pixel_shuffle(out.transpose(1, 2).flatten(0, 1), self.block).unflatten(0, (b, t))
        state = AutoencoderState(enc_states, dec_states, history)
        if not self.composite:
            return torch.sigmoid(out), state  # (B, T, 3, H, W)
        mask, image = torch.sigmoid(out[:, :, :1]), torch.sigmoid(out[:, :, 1:])  # (B, T, 1 | 3, H, W)
        return frames + mask * (image - frames), state  # (B, T, 3, H, W)
