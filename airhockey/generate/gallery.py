"""A page of many episodes at once (``airhockey data gallery DATA --out page.html``).

One self-contained HTML file: every episode an animated GIF inlined as a ``data:`` URI (no request
leaves the page; browsers loop GIFs and decode them without a codec), shown at three times its
size with sharp pixels, captioned with its label, the button hit and its strike and hit frames. A
strip under each clip marks those frames on the episode's timeline (yellow: strike, green: hit)
and the current frame (white). Buttons above the grid show one label at a time (a few lines of
inline JavaScript). ``episodes`` bounds the page's size: that many episodes drawn at random with
``seed``, shown in dataset order.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from airhockey.errors import UserError
from airhockey.generate.rollout import make_env
from airhockey.generate.shards import EpisodeShards, open_shards
from airhockey.paths import check_output_file
from airhockey.writing import write_atomic

PAGE_SUFFIXES = (".html", ".htm")
SCALE = 3
"""Display size of a clip, in multiples of the frame size (pixels kept sharp by CSS)."""
STRIKE_RGB = (250, 200, 30)
HIT_RGB = (40, 200, 80)
NOW_RGB = (255, 255, 255)
TIMELINE_RGB = (70, 70, 70)


@dataclass
class Gallery:
    """What ``write_gallery`` wrote."""

    out: Path
    """The page."""
    shown: int
    """Episodes on the page."""
    total: int
    """Episodes in the dataset."""
    counts: dict[str, int]
    """Episodes on the page, by label name."""
    size: int
    """The page's size in bytes."""


def check_page_path(out: str | Path) -> Path:
    """Checks that ``out`` names an HTML file that can be written.

    Raises:
        UserError: for another suffix than .html or .htm, or a path that cannot be written.
    """
    out = Path(out)
    if out.suffix.lower() not in PAGE_SUFFIXES:
        raise UserError(f"--out must name an .html file, got {str(out)!r}")
    return check_output_file(out, "gallery page")


def pick_episodes(total: int, count: int, seed: int) -> list[int]:
    """``count`` episode indices of ``total``, drawn without replacement with ``seed``, sorted
    (every episode when ``count >= total``)."""
    if count >= total:
        return list(range(total))
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=count, replace=False))


def with_timeline(frames: NDArray[np.uint8], strike_frame: int, hit_frame: int) -> NDArray[np.uint8]:
    """Frames (T, H, W, 3) with a timeline strip below: (T, H + h, W, 3) uint8.

    The strip spans the episode: column ``x`` stands for frame ``x * (T - 1) / (W - 1)``; the strike
    and hit frames are marked in its upper half (``STRIKE_RGB``, ``HIT_RGB``; none where -1), the
    current frame in its lower half (``NOW_RGB``).
    """
    length, _, width, _ = frames.shape
    height = max(4, width // 16)
    strip = np.empty((height, width, 3), dtype=np.uint8)
    strip[:] = TIMELINE_RGB

    def column(t: int) -> int:
        return round(t * (width - 1) / max(1, length - 1))

    for t, rgb in ((strike_frame, STRIKE_RGB), (hit_frame, HIT_RGB)):
        if 0 <= t < length:
            strip[: height // 2, column(t)] = rgb
    out = np.concatenate([frames, np.broadcast_to(strip, (length, height, width, 3))], axis=1)
    for t in range(length):
        out[t, -(height - height // 2) :, column(t)] = NOW_RGB
    return out


def gif_bytes(frames: NDArray[np.uint8], fps: float) -> bytes:
    """Frames (T, H, W, 3) uint8 as a looping animated GIF."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    # GIF delays are whole centiseconds; browsers slow delays under 2 cs down to 10 cs.
    delay = max(20, round(100 / fps) * 10)
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=delay, loop=0)
    return buffer.getvalue()


def _figure(episodes: EpisodeShards, index: int, fps: float) -> tuple[str, str]:
    """One episode's ``<figure>`` and its label name."""
    info = episodes.info(index)
    names = episodes.label_names
    label = names[info["label"]] if 0 <= info["label"] < len(names) else str(info["label"])
    frames = with_timeline(episodes.frames(index), info["strike_frame"], info["hit_frame"])
    source = base64.b64encode(gif_bytes(frames, fps)).decode("ascii")
    height, width = frames.shape[1:3]
    hit = f"button {info['hit_button']}" if info["hit_button"] >= 0 else "no button"
    strike = f"strike {info['strike_frame']}" if info["strike_frame"] >= 0 else "no strike"
    caption = (
        f"<b>{html.escape(label)}</b> #{info['id']}<br>{hit} &middot; {strike} &middot; hit "
        f"{info['hit_frame']} of {info['length']}<br>seed {info['seed']}"
    )
    figure = (
        f'<figure data-label="{html.escape(label)}"><img src="data:image/gif;base64,{source}" '
        f'width="{width * SCALE}" height="{height * SCALE}" alt="episode {info["id"]}, {html.escape(label)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )
    return figure, label


STYLE = """
body { font: 14px system-ui, sans-serif; margin: 1em; background: #fafafa; color: #222; }
#filter button { font: inherit; margin: 0 .3em .8em 0; padding: .2em .7em; }
#filter button[aria-pressed="true"] { background: #222; color: #fff; }
#grid { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; padding: 6px; background: #fff; border: 1px solid #ddd; }
figure img { display: block; image-rendering: pixelated; }
figcaption { font-size: 12px; line-height: 1.35; margin-top: 4px; }
[hidden] { display: none !important; }
.key { display: inline-block; width: .8em; height: .8em; vertical-align: middle; border: 1px solid #888; }
"""
SCRIPT = """
for (const button of document.querySelectorAll("#filter button")) {
  button.addEventListener("click", () => {
    const label = button.dataset.label;
    for (const other of document.querySelectorAll("#filter button"))
      other.setAttribute("aria-pressed", String(other === button));
    for (const figure of document.querySelectorAll("#grid figure"))
      figure.hidden = label !== "" && figure.dataset.label !== label;
  });
}
"""


def _page(title: str, summary: str, figures: list[str], counts: dict[str, int]) -> str:
    """The whole HTML page."""
    buttons = [f'<button data-label="" aria-pressed="true">all ({sum(counts.values())})</button>']
    buttons += [
        f'<button data-label="{html.escape(name)}" aria-pressed="false">{html.escape(name)} ({n})</button>'
        for name, n in counts.items()
    ]
    key = " ".join(
        f'<span class="key" style="background: rgb{rgb}"></span> {what}'
        for rgb, what in ((STRIKE_RGB, "strike frame"), (HIT_RGB, "hit frame"), (NOW_RGB, "now"))
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{summary}</p>"
        f"<p>Timeline under each clip: {key}</p>"
        f'<div id="filter">{"".join(buttons)}</div><div id="grid">{"".join(figures)}</div>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def write_gallery(data: str | Path, out: str | Path, *, episodes: int, seed: int) -> Gallery:
    """Writes a page of the dataset's episodes as looping clips, filterable by label.

    Args:
        data: a dataset directory or shard file.
        out: the page to write, an .html file (replaced atomically).
        episodes: at most this many episodes, drawn at random with ``seed`` (>= 1).
        seed: the seed of the draw.

    Returns:
        What was written.

    Raises:
        UserError: for a bad ``out`` or ``episodes``, or a dataset that cannot be read.
    """
    out = check_page_path(out)
    if episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    with open_shards(data) as source:
        env = make_env(source.attrs.get("env_kwargs", {}))  # for its frame rate only: it renders nothing
        fps = float(env.unwrapped.metadata["render_fps"])
        env.close()
        total = len(source)
        if total == 0:
            raise UserError(f"{data}: the dataset holds no episodes")
        chosen = pick_episodes(total, episodes, seed)
        figures, labels = zip(*(_figure(source, i, fps) for i in chosen), strict=True)
    counts = dict(sorted(Counter(labels).items(), key=lambda item: _order(source, item[0])))
    name = Path(data).absolute().name
    summary = (
        f"{len(chosen)} of {total} episodes"
        + (f" (drawn with seed {seed})" if len(chosen) < total else "")
        + f", {fps:g} frames per second."
    )
    page = _page(f"{name}: episodes", html.escape(summary), list(figures), counts)
    write_atomic(out, page)
    return Gallery(out, len(chosen), total, counts, len(page.encode()))


def _order(episodes: EpisodeShards, label: str) -> int:
    """A label name's position among the dataset's label names (unknown names last)."""
    names = episodes.label_names
    return names.index(label) if label in names else len(names)
