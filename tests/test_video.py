"""Videos and their banners: frame sizes as asked, labels legible."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from airhockey.video import MIN_VIDEO_HEIGHT, text_banner, write_video


@pytest.mark.parametrize(
    ("size", "suffix", "written"),
    [
        ((256, 256), ".mp4", (256, 256)),  # already high enough: kept as it is
        ((256, 256), ".gif", (256, 256)),
        ((64, 96), ".gif", (256, 384)),  # 4x up to MIN_VIDEO_HEIGHT
        ((300, 200), ".gif", (300, 200)),
        ((33, 33), ".mp4", (264, 264)),  # 8x, even for H.264
        ((85, 85), ".mp4", (340, 340)),  # 3x would be odd: 4x
    ],
)
def test_a_video_is_written_at_the_frame_size_or_upscaled_to_the_minimum_height(
    tmp_path, size, suffix, written
):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (*size, 3), dtype=np.uint8) for _ in range(3)]
    path = write_video(frames, tmp_path / f"v{suffix}", fps=10)
    video = iio.imread(path)  # (T, H, W, 3)
    assert video.shape[1:3] == written
    assert written[0] >= min(MIN_VIDEO_HEIGHT, size[0])


def first_lit_row(banner: np.ndarray) -> int:
    return int(np.nonzero((banner[..., 0] > 60).any(axis=1))[0][0])


@pytest.mark.parametrize("width", [32, 64, 128, 256])
def test_a_banner_keeps_the_dot_of_an_i_and_the_tail_of_a_g(width):
    # At too small a font the dot of "i" vanishes and "right" reads "nght".
    assert first_lit_row(text_banner(width, "i")) < first_lit_row(text_banner(width, "n"))
    g = text_banner(width, "g")
    assert g.shape[1] == width and not (g[-1, :, 0] > 60).any()  # nothing cut at the bottom
