"""``airhockey data gallery``: one self-contained page, opened in headless Chromium: every clip loads
and plays, the label filter hides the other label, and a screenshot shows the page."""

from __future__ import annotations

import base64
import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.errors import UserError
from airhockey.generate import open_shards
from airhockey.generate.gallery import pick_episodes, with_timeline, write_gallery

runner = CliRunner()
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def test_the_page_is_self_contained_with_one_clip_per_drawn_episode(small_dataset, tmp_path):
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["data", "gallery", str(small_dataset), "--out", str(out), "--episodes", "5"])
    assert result.exit_code == 0, result.output
    assert "5 of 8 episodes" in result.stdout
    page = out.read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", page) and "http" not in page  # nothing fetched
    clips = re.findall(r'src="data:image/gif;base64,([^"]+)"', page)
    chosen = pick_episodes(8, 5, seed=0)
    assert len(clips) == 5 and len(chosen) == 5
    episodes = open_shards(small_dataset)
    for clip, index in zip(clips, chosen, strict=True):
        gif = Image.open(io.BytesIO(base64.b64decode(clip)))
        info = episodes.info(index)
        assert gif.info["loop"] == 0 and gif.n_frames <= info["length"]  # equal frames in a row merge
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
        assert sum(durations) == info["length"] * 20  # 50 frames per second, however merged
        assert f"#{info['id']}<" in page and f"strike {info['strike_frame']}" in page
    assert pick_episodes(8, 5, seed=0) != pick_episodes(8, 5, seed=1)
    assert pick_episodes(8, 20, seed=3) == list(range(8))


def test_the_timeline_marks_strike_hit_and_the_current_frame():
    frames = np.zeros((11, 32, 32, 3), dtype=np.uint8)
    marked = with_timeline(frames, strike_frame=2, hit_frame=10)
    assert marked.shape[:3] == (11, 36, 32) and np.array_equal(marked[:, :32], frames)
    strip = marked[0, 32:]
    assert tuple(strip[0, round(2 * 31 / 10)]) == (250, 200, 30) and tuple(strip[0, 31]) == (40, 200, 80)
    assert tuple(marked[5, -1, round(5 * 31 / 10)]) == (255, 255, 255) and tuple(marked[5, -1, 0]) != (
        255,
        255,
        255,
    )


def test_bad_options_are_refused_before_writing(small_dataset, tmp_path):
    with pytest.raises(UserError, match=r"--out must name an \.html file"):
        write_gallery(small_dataset, tmp_path / "page.gif", episodes=4, seed=0)
    with pytest.raises(UserError, match="--episodes must be at least 1"):
        write_gallery(small_dataset, tmp_path / "page.html", episodes=0, seed=0)
    with pytest.raises(UserError, match="no such dataset"):
        write_gallery(tmp_path / "missing", tmp_path / "page.html", episodes=4, seed=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason="no headless Chromium here (Debian: apt-get install chromium chromium-driver)",
)
def test_chromium_loads_every_clip_and_the_filter_shows_one_label(small_dataset, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    out = write_gallery(small_dataset, tmp_path / "page.html", episodes=8, seed=0).out
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,800"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        browser.get(out.absolute().as_uri())
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) == 8 and all(
            done and width == 32 and height > 32 for done, width, height in images
        )
        browser.find_element(By.CSS_SELECTOR, '#filter button[data-label="right"]').click()
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('#grid figure'))"
            ".map(f => [f.dataset.label, f.getBoundingClientRect().width > 0])"
        )
        assert {label for label, visible in shown if visible} == {"right"}
        assert sum(visible for _, visible in shown) == 4 and len(shown) == 8
        browser.find_element(By.CSS_SELECTOR, '#filter button[data-label=""]').click()
        screenshot = tmp_path / "page.png"
        assert browser.save_screenshot(str(screenshot))
    finally:
        browser.quit()
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.std() > 20  # not blank: the table's red buttons and green bar are drawn
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 8 * 20  # every clip's buttons on screen
