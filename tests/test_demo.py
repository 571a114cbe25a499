"""The web demo in a real browser: Debian's headless Chromium, driven by Playwright, loads the page,
runs the sample, and the screenshot and the downloaded boxes are checked against the same run made
here."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, need

pytest.importorskip("cv2")
pytest.importorskip("gradio", reason="gradio is not installed: pip install 'alpharefine-sdk[demo]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install playwright")

CHROMIUM = os.environ.get("ALPHAREFINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FRAMES = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def refiner():
    from alpharefine_sdk.refiner import Refiner

    return Refiner.from_pretrained(None, device="cpu")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The first frames of the OTB sequence Crossing (the sample of a source checkout)."""
    src = need(DATA / "sequences" / "otb" / "Crossing")
    dst = tmp_path_factory.mktemp("sample") / "Crossing"
    (dst / "img").mkdir(parents=True)
    for f in sorted((src / "img").iterdir())[:FRAMES]:
        shutil.copy(f, dst / "img" / f.name)
    lines = (src / "groundtruth_rect.txt").read_text().splitlines()[:FRAMES]
    (dst / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return dst


@pytest.fixture(scope="module")
def server(refiner, sample):
    from alpharefine_sdk.demo.app import build_app, launch

    app = build_app(refiner, sample=str(sample), max_frames=FRAMES, default_frames=FRAMES)
    port = _free_port()
    launch(app, host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_demo_in_headless_chromium(server, refiner, sample, tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI installs it)")
    import cv2

    from alpharefine_sdk.demo.core import track_clip
    from alpharefine_sdk.eval.datasets import load_sequence
    from alpharefine_sdk.eval.runs import run_refined
    from alpharefine_sdk.eval.trackers import make_factory

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(server, wait_until="domcontentloaded", timeout=60_000)
            page.locator("#sample").click(timeout=60_000)
            sync_api.expect(page.locator("#box textarea, #box input").first).not_to_have_value("", timeout=60_000)
            page.locator("#run").click()
            sync_api.expect(page.locator("#summary")).to_contain_text("Mean IoU", timeout=180_000)
            page.wait_for_timeout(1000)
            shot = tmp_path / "demo.png"
            page.screenshot(path=str(shot), full_page=True)
            view_png = page.locator("#view img").first.screenshot()
            link = page.locator('#files a[download="results.json"]').first
            href = link.get_attribute("href")
            got = json.loads(page.request.get(href if href.startswith("http") else server + href.lstrip("/")).text())
            summary = page.locator("#summary").inner_text()
        finally:
            browser.close()
    if os.environ.get("ALPHAREFINE_DEMO_SCREENSHOT"):  # how docs/demo.png is made
        shutil.copy(shot, os.environ["ALPHAREFINE_DEMO_SCREENSHOT"])

    # the screenshot: a real page, and the result view shows the base (red) and refined (green) boxes
    page_img = cv2.imread(str(shot))
    assert page_img is not None and page_img.shape[1] == 1400 and page_img.shape[0] >= 1000
    view = cv2.imdecode(np.frombuffer(view_png, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b, g, r = view[..., 0], view[..., 1], view[..., 2]
    red = (r > 200) & (g < 60) & (b < 60)
    green = (g > 180) & (r < 60) & (b < 60)
    assert red.sum() > 50 and green.sum() > 50
    left, right = view.shape[1] // 2 - 20, view.shape[1] // 2 + 20
    assert red[:, :left].sum() > 10 * red[:, right:].sum()  # base box on the left half
    assert green[:, right:].sum() > 10 * green[:, :left].sum()  # refined box on the right half

    # the boxes the page returned: those of the same run made here, which are eval's +AR boxes
    seq = load_sequence(sample)
    ours = track_clip(seq, seq.init_box, "csrt", refiner, max_frames=FRAMES, gt=seq.gt)
    assert got["frames"] == FRAMES and got["tracker"] == "csrt"
    np.testing.assert_allclose(np.array(got["refined"]), ours.refined, atol=1e-4)
    np.testing.assert_allclose(np.array(got["base"]), ours.base, atol=1e-4)
    expect = run_refined(seq, FRAMES, make_factory("csrt"), refiner.clone(), 0, False, "auto")["boxes"]
    np.testing.assert_allclose(ours.refined, expect, atol=1e-9)
    assert got["mean_iou_refined"] == pytest.approx(ours.summary()["mean_iou_refined"], abs=1e-6)
    assert f"{got['mean_iou_refined']:.3f}" in summary and got["mean_iou_refined"] > 0.5


def _click_image(page, selector: str, x: float, y: float) -> None:
    """Click the image pixel (x, y) of an <img> shown with object-fit: contain."""
    img = page.locator(selector).first
    w, h = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
    box = img.bounding_box()
    scale = min(box["width"] / w, box["height"] / h)
    ox, oy = (box["width"] - w * scale) / 2, (box["height"] - h * scale) / 2
    img.click(position={"x": ox + (x + 0.5) * scale, "y": oy + (y + 0.5) * scale})


def test_demo_upload_and_drawn_box(server, refiner, sample, tmp_path):
    """An uploaded video, the first box drawn with two clicks, no ground truth."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI installs it)")
    import cv2

    from alpharefine_sdk.demo.core import track_clip
    from alpharefine_sdk.eval.datasets import load_sequence

    video = tmp_path / "clip.avi"
    frames = sorted((sample / "img").iterdir())[:6]
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (first.shape[1], first.shape[0]))
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    corners = ((200, 148), (223, 202))  # the pedestrian of Crossing, drawn a little loose
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(server, wait_until="domcontentloaded", timeout=60_000)
            page.locator("#upload input[type=file]").set_input_files(str(video), timeout=60_000)
            sync_api.expect(page.locator("#status")).to_contain_text("clip.avi", timeout=60_000)
            page.wait_for_timeout(500)
            for x, y in corners:
                _click_image(page, "#first img", x, y)
                page.wait_for_timeout(700)
            box_field = page.locator("#box textarea, #box input").first
            sync_api.expect(box_field).not_to_have_value("", timeout=30_000)
            drawn = [float(v) for v in box_field.input_value().split(",")]
            page.locator("#run").click()
            sync_api.expect(page.locator("#summary")).to_contain_text("frames", timeout=180_000)
            href = page.locator('#files a[download="results.json"]').first.get_attribute("href")
            got = json.loads(page.request.get(href if href.startswith("http") else server + href.lstrip("/")).text())
            summary = page.locator("#summary").inner_text()
        finally:
            browser.close()
    (x0, y0), (x1, y1) = corners
    np.testing.assert_allclose(drawn, [x0, y0, x1 - x0 + 1, y1 - y0 + 1], atol=2)
    assert got["frames"] == 6 and got["gt"] is None and "Mean IoU" not in summary
    np.testing.assert_allclose(got["refined"][0], drawn)
    seq = load_sequence(video, init_box=drawn)
    ours = track_clip(seq, drawn, "csrt", refiner, max_frames=6)
    np.testing.assert_allclose(np.array(got["refined"]), ours.refined, atol=1e-4)


def test_track_clip_errors(refiner, sample):
    from alpharefine_sdk.demo.core import parse_box, track_clip
    from alpharefine_sdk.eval.datasets import load_sequence

    seq = load_sequence(sample)
    with pytest.raises(ValueError, match="x,y,w,h"):
        parse_box("1,2,3")
    with pytest.raises(ValueError, match="x,y,w,h"):
        parse_box("1,2,0,4")
    with pytest.raises(ValueError, match="outside"):
        track_clip(seq, [5000, 10, 20, 20], "csrt", refiner)
    with pytest.raises(ValueError, match="choose one of"):
        track_clip(seq, seq.init_box, "goturn", refiner)
    with pytest.raises(ValueError, match="ground truth has"):
        track_clip(seq, seq.init_box, "csrt", refiner, max_frames=4, gt=seq.gt[:2])
