"""Writing frame sequences to video files with moviepy (MP4 or GIF, chosen by the file suffix)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from airhockey.paths import check_output_file
from airhockey.writing import commit, disk_errors, fresh_temp

VIDEO_SUFFIXES = (".mp4", ".gif")
MIN_FONT_PX = 11
"""The smallest font size of a banner, in pixels."""
MIN_VIDEO_HEIGHT = 256
"""Frames lower than this (pixels) are upscaled by pixel repetition in a video."""


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
    """A dark strip (h, width, 3) uint8 with ``text`` in white, to stack above a frame or panel.

    The font is at least ``MIN_FONT_PX`` pixels, below which the dot of an "i" vanishes ("right" reads
    "nght"), and the strip is as high as the font's ascenders and descenders need.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(MIN_FONT_PX, width // 8))
    # The strip's height from the tallest and deepest glyphs, so that no label is cut.
    _, _, _, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((2, 1), "Hgjy|", font=font)
    image = Image.new("RGB", (width, bottom + 2), (20, 20, 20))
    ImageDraw.Draw(image).text((2, 1), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def write_video(frames: Sequence[NDArray[np.uint8]], path: str | Path, fps: float) -> Path:
    """Writes RGB frames to an MP4 (H.264) or GIF file.

    Frames lower than ``MIN_VIDEO_HEIGHT`` are upscaled by pixel repetition (the smallest whole factor
    that reaches it), so that 64x64 frames stay sharp in a player and survive the codec's chroma
    subsampling; frames that high or higher keep their size, except that an MP4 of odd width or
    height is repeated by a factor that makes both even.

    Args:
        frames: a sequence of uint8 arrays of shape (H, W, 3), all the same shape.
        path: where to write; the suffix (``.mp4`` or ``.gif``) chooses the format.
        fps: frames per second.

    Returns:
        The path written.

    Raises:
        UserError: the disk is full (nothing is left behind), or the temporary name is taken.
    """
    from moviepy import ImageSequenceClip

    path = check_video_path(path)
    if len(frames) == 0:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    scale = max(1, -(-MIN_VIDEO_HEIGHT // height))
    # H.264 wants even sizes: an odd size repeated by an odd factor stays odd, so the factor grows by one.
    if path.suffix.lower() == ".mp4" and (height * scale % 2 or width * scale % 2):
        scale += 1
    big = [np.repeat(np.repeat(f, scale, axis=0), scale, axis=1) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = ImageSequenceClip(big, fps=fps)
    # moviepy writes by name: into a temporary file of this process (never a planted link), with
    # the suffix that picks the format, renamed over ``path`` when complete.
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    with disk_errors(path, tmp):
        fresh_temp(tmp)
        if path.suffix.lower() == ".gif":
            clip.write_gif(str(tmp), fps=fps, logger=None)
        else:
            clip.write_videofile(str(tmp), fps=fps, codec="libx264", audio=False, logger=None)
        commit(tmp, path)
    return path
