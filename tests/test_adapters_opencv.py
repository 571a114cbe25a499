"""RefinedTracker around real OpenCV trackers on real frames (a few frames each)."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
from conftest import DATA, need

from alpharefine_sdk import MissingDependencyError, RefinedTracker
from alpharefine_sdk.adapters import OPENCV_TRACKERS, OpenCVAdapter, opencv_factory, opencv_tracker

cv2 = pytest.importorskip("cv2")
contrib = pytest.mark.skipif(
    not hasattr(cv2, "legacy"), reason="needs the contrib OpenCV wheel (alpharefine-sdk[contrib])"
)

SEQ = DATA / "sequences/otb/Crossing"
NANO = DATA / "nanotrack_onnx/v2"


@pytest.fixture(scope="module")
def frames():
    need(SEQ)
    return [cv2.imread(str(SEQ / f"img/{i:04d}.jpg")) for i in range(1, 4)]  # BGR, 360x240


@pytest.fixture(scope="module")
def box0():
    return np.loadtxt(SEQ / "groundtruth_rect.txt", delimiter=",")[0]  # (204, 150, 17, 50)


def run(tracker, frames, box):
    """init on frames[0], update on the rest; returns the outputs and the base boxes seen."""
    assert tracker.init(frames[0], box) in (None, True)
    outs, bases = [], []
    for f in frames[1:]:
        outs.append(tracker.update(f))
        bases.append(tracker.last_base_box.copy())
    return outs, bases


def check_boxes(outs, hw, kind=int, min_size=10):
    H, W = hw
    for ok, b in outs:
        assert ok is True
        assert isinstance(b, tuple) and len(b) == 4 and all(type(v) is kind for v in b), b
        x, y, w, h = b
        assert 0 <= x and 0 <= y and x + w <= W and y + h <= H, b
        assert w >= min_size - 1 and h >= min_size - 1, b


def test_mil_instance_same_reinit_and_colour_order(ar34, frames, box0):
    t = RefinedTracker(cv2.TrackerMIL.create(), ar34.clone(), as_int=False)
    assert isinstance(t, OpenCVAdapter) and t.kind == "opencv" and t.reinit == "same"
    first = t.base
    outs, _ = run(t, frames[:2], box0)
    check_boxes(outs, frames[0].shape[:2], kind=float)
    assert t.base is first  # MIL is re-initialised in place
    assert t.last_result is not None and t.last_mask is None
    # BGR frames reach the base as they are, and the refiner with their colour order named:
    # the result equals a refiner fed the RGB conversion.
    ref = ar34.clone()
    ref.initialize(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB), box0)
    expect = ref.refine(cv2.cvtColor(frames[1], cv2.COLOR_BGR2RGB), t.last_base_box, clip=True).box
    np.testing.assert_allclose(outs[0][1], expect, atol=1e-6)


def test_mil_update_before_init_raises_not_segfaults(refiner, frames):
    t = RefinedTracker(cv2.TrackerMIL.create(), refiner)
    with pytest.raises(RuntimeError, match="before init"):
        t.update(frames[0])


def test_write_back_moves_the_base_tracker(frames, box0):
    """With write-back the base's next box starts from the refined box; without, from its own.
    The packaged (trained) model, ungated: the random parity weights answer a degenerate box on
    these frames, which gives back the input box (nothing would move)."""
    from alpharefine_sdk import Refiner

    trained = Refiner.from_pretrained(None, device="cpu", gate=None, backend="torch")
    wb = RefinedTracker(cv2.TrackerMIL.create(), trained, write_back=True)
    outs_wb, bases_wb = run(wb, frames[:3], box0)
    plain = cv2.TrackerMIL.create()  # what the base sees without write-back: its own boxes
    plain.init(frames[0], tuple(int(v) for v in box0))
    bases_plain = [np.array(plain.update(f)[1], dtype=float) for f in frames[1:3]]
    refined1 = outs_wb[0][1]
    assert refined1[2:] != tuple(int(v) for v in box0[2:]), "precondition: the refiner changed the box size"
    # MIL keeps the size of the box it was initialised on: the base now tracks the refined box.
    assert tuple(bases_wb[1][2:]) == refined1[2:]
    assert tuple(bases_plain[1][2:]) == tuple(box0[2:])
    assert np.abs(bases_wb[1][:2] - np.array(refined1[:2])).max() <= 15


@contrib
def test_kcf_factory_path_does_not_crash(ar34, frames, box0):
    t = RefinedTracker(cv2.TrackerKCF.create, ar34.clone(), write_back=True)
    assert t.reinit == "fresh" and t.factory is cv2.TrackerKCF.create
    outs, bases = run(t, frames[:3], box0)
    check_boxes(outs, frames[0].shape[:2])
    # fresh instance each write-back, which then tracks the refined box (KCF keeps the size)
    assert tuple(bases[1][2:]) == outs[0][1][2:]
    # a second init on the same wrapper (a new sequence) must not re-init the used KCF instance
    outs2, _ = run(t, frames[:2], box0)
    check_boxes(outs2, frames[0].shape[:2])


@contrib
def test_kcf_instance_derives_factory_and_csrt(refiner, frames, box0):
    t = RefinedTracker(cv2.TrackerKCF.create(), refiner)
    assert t.reinit == "fresh" and t.factory is not None
    outs, _ = run(t, frames[:2], box0)
    check_boxes(outs, frames[0].shape[:2])
    c = RefinedTracker(cv2.TrackerCSRT.create(), refiner.clone(), mask=True)
    assert c.reinit == "same"
    outs, _ = run(c, frames[:2], box0)
    check_boxes(outs, frames[0].shape[:2])
    assert c.last_mask.shape == frames[0].shape[:2] and c.last_mask.dtype == np.float32


@contrib
def test_legacy_float_boxes(refiner, frames, box0):
    t = RefinedTracker(cv2.legacy.TrackerKCF_create(), refiner)
    assert t.legacy and not t.as_int and t.reinit == "fresh" and t.factory is not None
    outs, _ = run(t, frames[:2], box0)
    check_boxes(outs, frames[0].shape[:2], kind=float)


@contrib
def test_base_failure_keeps_base_answer_and_skips_refinement(refiner, frames, box0):
    t = RefinedTracker(cv2.legacy.TrackerMOSSE_create, refiner)
    assert t.init(frames[0], box0) is True
    ok, box = t.update(frames[1])  # MOSSE loses this pedestrian at once and says so
    assert ok is False and box == (0.0, 0.0, 0.0, 0.0)
    assert t.last_result is None and t.last_mask is None


@pytest.mark.skipif(not (NANO / "backbone.onnx").exists(), reason="NanoTrack v2 ONNX files not in ../shared/data")
def test_nano_from_helper(refiner, frames, box0):
    files = dict(backbone=NANO / "backbone.onnx", neckhead=NANO / "neckhead.onnx")
    nano = opencv_tracker("nano", **files)
    t = RefinedTracker(nano, refiner)
    assert t.reinit == "same" and t.factory is None  # model files: no factory from type(t).create
    outs, _ = run(t, frames[:2], box0)
    check_boxes(outs, frames[0].shape[:2])
    assert t.base is nano
    assert callable(opencv_factory("nano", **files))


def test_opencv_tracker_helper_errors(frames):
    assert {"mil", "csrt", "kcf", "nano", "vit", "dasiamrpn"} <= set(OPENCV_TRACKERS)
    assert type(opencv_tracker("mil")).__name__ == "TrackerMIL"
    assert type(opencv_tracker("cv2.TrackerMIL")).__name__ == "TrackerMIL"
    with pytest.raises(ValueError, match="choose one of"):
        opencv_tracker("boosting2")
    with pytest.raises(ValueError, match="backbone="):
        opencv_tracker("nano")
    with pytest.raises(FileNotFoundError, match="net="):
        opencv_tracker("vit", net="missing/vitTracker.onnx")
    with pytest.raises(ValueError, match="valid fields"):
        opencv_tracker("mil", no_such_param=1)


def test_missing_contrib_class_names_the_extra(monkeypatch):
    """On the main wheel CSRT/KCF and cv2.legacy are absent: the error names the contrib extra."""
    main_wheel = types.SimpleNamespace(__version__="5.0.0", TrackerMIL=cv2.TrackerMIL)
    monkeypatch.setitem(__import__("sys").modules, "cv2", main_wheel)
    for name in ("csrt", "kcf", "legacy.kcf"):
        with pytest.raises(MissingDependencyError, match=r"alpharefine-sdk\[contrib\]"):
            opencv_tracker(name)


class DuckTracker:
    """An OpenCV-style tracker that is not an OpenCV class (keeps a fixed box)."""

    def init(self, frame, box):
        self.box = tuple(int(v) for v in box)

    def update(self, frame):
        return True, self.box


def test_no_factory_turns_write_back_off_with_warning(refiner, frames, box0):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RefinedTracker(cv2.TrackerMIL.create(), refiner, write_back=True).write_back is True  # MIL: no warning
    with pytest.warns(UserWarning, match="factory"):
        t = RefinedTracker(DuckTracker(), refiner, reinit="fresh", write_back=True)
    assert t.write_back is False
    t.init(frames[0], box0)
    t.update(frames[1])
    assert t.base.box == tuple(int(v) for v in box0)  # untouched
    same = RefinedTracker(DuckTracker(), refiner.clone(), write_back=True)  # non-OpenCV objects: init again in place
    assert same.reinit == "same" and not same.as_int
    same.init(frames[0], box0)
    _, out = same.update(frames[1])
    assert same.base.box == tuple(int(v) for v in out)


def test_update_returning_a_bare_box_is_a_clear_type_error(refiner, frames, box0):
    class BoxOnly:
        def init(self, frame, box):
            self.box = tuple(int(v) for v in box)

        def update(self, frame):
            return self.box

    t = RefinedTracker(BoxOnly(), refiner)
    t.init(frames[0], box0)
    with pytest.raises(TypeError, match="kind='got10k'"):
        t.update(frames[1])


def test_auto_write_back_policy(refiner):
    """write_back="auto" (default): off for OpenCV trackers (re-init would discard their model),
    on for trackers with a settable state."""
    assert RefinedTracker(cv2.TrackerMIL.create(), refiner).write_back is False

    class PysotLike:
        center_pos = np.zeros(2)
        size = np.ones(2)

        def init(self, img, bbox):
            pass

        def track(self, img):
            return {"bbox": [0, 0, 1, 1], "best_score": 1.0}

    assert RefinedTracker(PysotLike(), refiner.clone()).write_back is True
