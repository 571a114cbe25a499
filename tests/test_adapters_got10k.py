"""The got10k adapter with real ``got10k.trackers.Tracker`` subclasses and got10k's own ``track`` loop."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, need

from alpharefine_sdk import RefinedTracker

cv2 = pytest.importorskip("cv2")
trackers = pytest.importorskip("got10k.trackers")

SEQ = DATA / "sequences/otb/Crossing"
BOX = np.array([204.0, 150.0, 17.0, 50.0])


@pytest.fixture(scope="module")
def img_files():
    need(SEQ)
    return [str(SEQ / f"img/{i:04d}.jpg") for i in range(1, 4)]


class CSRTGot10k(trackers.Tracker):
    """A got10k tracker around OpenCV CSRT: PIL RGB images in, numpy boxes out."""

    def __init__(self):
        super().__init__(name="CSRT", is_deterministic=True)
        self.images = []

    def init(self, image, box):
        self.images.append(image)
        self.cv = cv2.TrackerCSRT.create()
        self.cv.init(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))

    def update(self, image):
        self.images.append(image)
        ok, box = self.cv.update(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))
        return np.array(box, dtype=np.float64)


class StateGot10k(trackers.Tracker):
    """A got10k tracker keeping ``state = [x, y, w, h]`` that searches around its state."""

    def __init__(self):
        super().__init__(name="NCC")
        self.search = []

    def init(self, image, box):
        img = np.asarray(image)
        x, y, w, h = (int(v) for v in box)
        self.template, self.state = img[y : y + h, x : x + w].copy(), [float(v) for v in box]

    def update(self, image):
        img = np.asarray(image)
        self.search.append(list(self.state))
        x, y, w, h = self.state
        iw, ih = max(4, int(round(w))), max(4, int(round(h)))
        x1, y1 = int(max(0, x - w / 2)), int(max(0, y - h / 2))
        win = img[y1 : int(y1 + 2 * h), x1 : int(x1 + 2 * w)]
        res = cv2.matchTemplate(win, cv2.resize(self.template, (iw, ih)), cv2.TM_CCOEFF_NORMED)
        _, _, _, (mx, my) = cv2.minMaxLoc(res)
        self.state = [float(x1 + mx), float(y1 + my), w, h]
        return np.array(self.state)


def test_got10k_track_loop_with_real_subclass(ar34, img_files):
    base = CSRTGot10k()
    t = RefinedTracker(base, ar34.clone())
    assert isinstance(t, trackers.Tracker) and isinstance(t, RefinedTracker)
    assert t.kind == "got10k" and t.name == "CSRT_AR" and t.is_deterministic
    boxes, times = t.track(img_files, BOX)  # got10k's own loop: PIL RGB images
    assert boxes.shape == (3, 4) and times.shape == (3,)
    np.testing.assert_allclose(boxes[0], BOX)
    assert type(base.images[1]).__module__.startswith("PIL")  # the base still gets PIL images
    for b in boxes[1:]:
        assert 0 <= b[0] and 0 <= b[1] and b[0] + b[2] <= 360 and b[1] + b[3] <= 240 and min(b[2:]) >= 10
    assert not np.allclose(boxes[2], t.last_base_box)  # refined, not the base box
    # RGB reaches the refiner: the same as refining np.asarray(PIL image) as RGB directly
    from PIL import Image

    ref = ar34.clone()
    ref.initialize(np.asarray(Image.open(img_files[0]).convert("RGB")), BOX)
    expect = ref.refine(np.asarray(Image.open(img_files[1]).convert("RGB")), base_box_1(t, img_files), clip=True).box
    np.testing.assert_allclose(boxes[1], expect, atol=1e-6)


def base_box_1(t, img_files):
    """The base box of frame 1 for the run above (replayed on a fresh base)."""
    from PIL import Image

    b = CSRTGot10k()
    b.init(Image.open(img_files[0]).convert("RGB"), BOX)
    return b.update(Image.open(img_files[1]).convert("RGB"))


def test_got10k_writes_back_into_known_state(ar34, img_files):
    from PIL import Image

    base = StateGot10k()
    t = RefinedTracker(base, ar34.clone(), name="NCC+AR")
    assert t.name == "NCC+AR"
    imgs = [Image.open(f).convert("RGB") for f in img_files]
    t.init(imgs[0], BOX)
    out = t.update(imgs[1])
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (4,)
    assert base.state == out.tolist()
    t.update(imgs[2])
    assert base.search[1] == out.tolist()  # the next search starts from the refined box
