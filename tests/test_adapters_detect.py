"""Kind detection, bad base objects, the refiner argument, the callable adapter, cheap import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, need

from alpharefine_sdk import RefinedTracker, WeightsError
from alpharefine_sdk.adapters import KINDS, CallableAdapter, detect_kind

cv2 = pytest.importorskip("cv2")

SEQ = DATA / "sequences/otb/Crossing"
BOX = np.array([204.0, 150.0, 17.0, 50.0])


@pytest.fixture(scope="module")
def rgb():
    need(SEQ)
    return [cv2.cvtColor(cv2.imread(str(SEQ / f"img/{i:04d}.jpg")), cv2.COLOR_BGR2RGB) for i in (1, 2)]


class Pysotish:
    def init(self, img, bbox): ...

    def track(self, img): ...


class Pytrackingish:
    def initialize(self, image, info): ...

    def track(self, image, info=None): ...


class Starkish(Pytrackingish):
    state = None


class OpenCVish:
    def init(self, frame, box): ...

    def update(self, frame): ...


def test_detect_by_protocol():
    assert detect_kind(cv2.TrackerMIL.create()) == "opencv"
    assert detect_kind(cv2.TrackerMIL.create) == "opencv"  # OpenCV's factory
    assert detect_kind(lambda: cv2.TrackerMIL.create()) == "opencv"  # zero-argument factory
    assert detect_kind(OpenCVish()) == "opencv"
    assert detect_kind(Pysotish()) == "pysot"
    assert detect_kind(Pytrackingish()) == "pytracking"
    assert detect_kind(Starkish()) == "state_list"
    assert detect_kind(lambda frame: (0, 0, 1, 1)) == "callable"
    assert set(KINDS) == {"opencv", "pysot", "pytracking", "state_list", "got10k", "callable"}


@pytest.mark.parametrize("bad", [None, 42, "csrt", object(), [1, 2, 3], cv2.TrackerMIL])
def test_bad_base_is_a_clear_type_error(refiner, bad):
    with pytest.raises(TypeError, match=r"RefinedTracker|tracker|instance"):
        RefinedTracker(bad, refiner)


def test_kind_override_and_mismatch(refiner):
    with pytest.raises(ValueError, match="kind must be one of"):
        RefinedTracker(OpenCVish(), refiner, kind="siamese")
    with pytest.raises(TypeError, match="has no track"):
        RefinedTracker(OpenCVish(), refiner, kind="pysot")
    with pytest.raises(TypeError, match="has no update"):
        RefinedTracker(Pysotish(), refiner, kind="opencv")
    with pytest.raises(TypeError, match="fn\\(frame\\)"):
        RefinedTracker(OpenCVish(), refiner, kind="callable")
    assert RefinedTracker(Starkish(), refiner, kind="pytracking").kind == "pytracking"
    with pytest.raises(TypeError, match=r"opencv_factory\('csrt'\)"):
        RefinedTracker("csrt", refiner)


def test_refiner_argument(refiner, checkpoint_path):
    from alpharefine_sdk.weights.resolve import default_model_dir

    if default_model_dir() is None:
        with pytest.raises(WeightsError, match="(?i)pass a refiner"):
            RefinedTracker(OpenCVish())
    else:  # refiner=None: the packaged default model, with the gate its config recommends
        d = RefinedTracker(OpenCVish())
        assert d.refiner.config.extra["name"] == default_model_dir().name and d.refiner.gate is not None
    with pytest.raises(TypeError, match="Refiner.from_pretrained"):
        RefinedTracker(OpenCVish(), refiner=object())
    with pytest.raises(TypeError, match="write_back"):
        RefinedTracker(OpenCVish(), refiner, write_back="yes")
    with pytest.raises(ValueError, match="min_size"):
        RefinedTracker(OpenCVish(), refiner, min_size=0)
    with pytest.raises(TypeError, match="gate"):
        RefinedTracker(OpenCVish(), refiner, gate=lambda a, b: True)
    t = RefinedTracker(OpenCVish(), refiner)
    assert t.refiner is refiner and t.base is not None and not t.is_initialized


def test_callable_adapter(refiner, rgb):
    calls = []

    def detector(frame):
        calls.append(frame)
        return BOX + [2.0, 1.0, 0.0, 0.0]

    t = RefinedTracker(detector, refiner, mask=True)
    assert isinstance(t, CallableAdapter)
    with pytest.raises(RuntimeError, match="before init"):
        t(rgb[1])
    t.init(rgb[0], BOX)
    box = t(rgb[1])
    assert calls[0] is rgb[1]
    assert isinstance(box, np.ndarray) and box.dtype == np.float64 and box.shape == (4,)
    assert 0 <= box[0] and 0 <= box[1] and box[0] + box[2] <= 360 and box[1] + box[3] <= 240 and min(box[2:]) >= 10
    np.testing.assert_allclose(t.last_base_box, BOX + [2.0, 1.0, 0.0, 0.0])
    assert t.last_mask.shape == (240, 360)
    lost = RefinedTracker(lambda frame: None, refiner.clone())
    lost.init(rgb[0], BOX)
    assert lost.update(rgb[1]) is None and lost.last_result is None
    lost.reset()
    assert not lost.is_initialized


def test_getattr_reaches_the_base(refiner):
    base = OpenCVish()
    base.custom = 7
    t = RefinedTracker(base, refiner)
    assert t.custom == 7
    with pytest.raises(AttributeError):
        t.not_there  # noqa: B018


def test_import_stays_cheap():
    code = (
        "import sys, alpharefine_sdk.adapters as a; a.RefinedTracker; "
        "print(sorted(m for m in ('torch', 'cv2', 'got10k', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
