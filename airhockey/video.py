"""Writing frame sequences to video files with moviepy (MP4 or GIF, chosen by the file suffix)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from airhockey.paths import check_output_file

VIDEO_SUFFIXES = (".mp4", ".gif")


def check_video_path(path: str | Path) -> Path:
    """Checks that ``path`` names a video file this package can write, before the frames are made.

    Raises:
        ValueError: when the suffix is neither ``.mp4`` nor ``.gif``.
        UserError: when the path cannot be written (an existing directory, under a file, no
            permission); see ``airhockey.paths.check_output_file``.
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video path must end in .mp4 or .gif, got {str(path)!r}")
    return check_output_file(path, "video file")


def text_banner(width: int, text: str) -> NDArray[np.uint8]:
    """A dark strip (h, width, 3) uint8 with ``text`` in white, to stack above a frame or panel."""
    from PIL import Image, ImageDraw, ImageFont

    height = max(12, width // 6)
    image = Image.new("RGB", (width, height), (20, 20, 20))
    font = ImageFont.load_default(size=height - 3)
    ImageDraw.Draw(image).text((2, 1), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def write_video(frames: Sequence[NDArray[np.uint8]], path: str | Path, fps: float) -> Path:
    """Writes RGB frames to an MP4 (H.264) or GIF file.

    Frames are upscaled by pixel repetition to at least 256 pixels high, so that 64x64 frames
    stay sharp in a player and survive the codec's chroma subsampling.

    Args:
        frames: a sequence of uint8 arrays of shape (H, W, 3), all the same shape.
        path: where to write; the suffix (``.mp4`` or ``.gif``) chooses the format.
        fps: frames per second.

    Returns:
        The path written.
    """
    from moviepy import ImageSequenceClip

    path = check_video_path(path)
    if len(frames) == 0:
        raise ValueError("no frames to write")
    scale = max(1, -(-256 // frames[0].shape[0]))
    # H.264 wants even sizes; pixel repetition by an even factor gives them.
    scale += scale % 2
    big = [np.repeat(np.repeat(f, scale, axis=0), scale, axis=1) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip(big, fps=fps)
    if path.suffix.lower() == ".gif":
        clip.write_gif(str(path), fps=fps, logger=None)
    else:
        clip.write_videofile(str(path), fps=fps, codec="libx264", audio=False, logger=None)
    return path
