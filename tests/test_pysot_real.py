"""Real pysot trackers (SiamRPN AlexNet, SiamRPN++ ResNet-50, SiamRPN-LT, SiamMask) from
``../shared/clients/pysot``, random weights on CPU, run through ``RefinedTracker`` on the sample
sequence. Needs the shared folder beside the repository (skipped with the reason otherwise)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SHARED, need
from tiny import ROOT_DATA

from alpharefine_sdk import RefinedTracker, Refiner
from alpharefine_sdk.adapters import PysotAdapter
from alpharefine_sdk.adapters.pysot import mask_polygon
from alpharefine_sdk.boxes import mask_to_box

cv2 = pytest.importorskip("cv2")
pytest.importorskip("yacs")
PYSOT = SHARED / "clients" / "pysot"
pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def pysot():
    need(PYSOT)
    sys.path.insert(0, str(PYSOT))
    from pysot.core.config import cfg
    from pysot.models.model_builder import ModelBuilder
    from pysot.tracker.tracker_builder import build_tracker

    default = cfg.clone()

    def build(experiment: str, seed: int = 0):
        import torch

        cfg.defrost()
        cfg.clear()
        cfg.update(default.clone())  # a fresh config: pysot keeps one global cfg
        cfg.merge_from_file(str(PYSOT / "experiments" / experiment / "config.yaml"))
        cfg.CUDA = False
        torch.manual_seed(seed)
        return build_tracker(ModelBuilder().eval())

    yield build
    sys.path.remove(str(PYSOT))


@pytest.fixture(scope="module")
def refiner():
    return Refiner.from_pretrained(device="cpu")  # the packaged default model


@pytest.fixture(scope="module")
def clip():
    gt = np.loadtxt(ROOT_DATA / "groundtruth_rect.txt", delimiter=",")
    return [cv2.imread(str(ROOT_DATA / "img" / f"{i:04d}.jpg")) for i in range(1, 5)], gt  # BGR, as pysot


def _check_frame(t, base, out, frame):
    H, W = frame.shape[:2]
    box = np.array(out["bbox"])
    assert len(out["bbox"]) == 4 and np.isfinite(box).all() and (box[2:] > 0).all()
    assert box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= W + 1e-6 and box[1] + box[3] <= H + 1e-6
    assert "bbox_base" in out and "best_score" in out
    if t.last_result is not None and not getattr(base, "longterm_state", False):
        # write-back: pysot's own state now holds the refined box
        np.testing.assert_allclose(base.center_pos, box[:2] + box[2:] / 2, atol=1e-6)
        np.testing.assert_allclose(base.size, box[2:], atol=1e-6)


@pytest.mark.parametrize("experiment", ["siamrpn_alex_dwxcorr", "siamrpn_r50_l234_dwxcorr"])
def test_siamrpn_refined_and_written_back(pysot, refiner, clip, experiment):
    frames, gt = clip
    base = pysot(experiment)
    t = RefinedTracker(base, refiner.clone())
    assert isinstance(t, PysotAdapter) and t.write_back is True and t.image_format == "BGR"
    t.init(frames[0], list(gt[0]))
    refined = 0
    for f in frames[1:]:
        out = t.track(f)
        _check_frame(t, base, out, f)
        refined += t.last_result is not None
    assert refined >= 1


def test_siamrpn_lt_long_term_state_is_left_alone(pysot, refiner, clip):
    frames, gt = clip
    base = pysot("siamrpnlt")
    t = RefinedTracker(base, refiner.clone())
    t.init(frames[0], list(gt[0]))
    seen_longterm = False
    for f in frames[1:]:
        out = t.track(f)
        _check_frame(t, base, out, f)
        if base.longterm_state and t.last_result is not None:
            # searching the whole frame: no write-back, pysot's state stays its own
            seen_longterm = True
            box = np.array(out["bbox"])
            assert not np.allclose(base.center_pos, box[:2] + box[2:] / 2)
    assert seen_longterm  # random weights score low, so SiamRPN-LT goes long-term at once


def test_siammask_polygon_follows_the_refined_mask(pysot, refiner, clip):
    frames, gt = clip
    base = pysot("siammask_r50_l3")
    t = RefinedTracker(base, refiner.clone(), mask=True)
    t.init(frames[0], list(gt[0]))
    for f in frames[1:]:
        out = t.track(f)
        _check_frame(t, base, out, f)
        if t.last_result is None:
            continue
        assert out["mask"] is t.last_mask and out["mask"].shape == f.shape[:2]
        assert len(out["polygon"]) == len(out["polygon_base"]) == 8
        assert out["polygon"] == mask_polygon(out["mask"], out["bbox"], 8)
        pts = np.array(out["polygon"]).reshape(4, 2)
        if (out["mask"] > 0.5).any():  # the rotated rectangle hugs the refined mask's region
            x, y, w, h = mask_to_box(out["mask"], 0.5)
            assert pts[:, 0].min() >= x - 1.5 and pts[:, 0].max() <= x + w + 0.5
            assert pts[:, 1].min() >= y - 1.5 and pts[:, 1].max() <= y + h + 0.5


def test_mask_polygon_forms():
    m = np.zeros((60, 80), np.float32)
    m[10:30, 20:50] = 0.9
    assert mask_polygon(m, (0, 0, 1, 1), 4) == [20.0, 10.0, 30.0, 20.0]
    pts = np.array(mask_polygon(m, (0, 0, 1, 1), 8)).reshape(4, 2)
    assert pts[:, 0].min() == 20 and pts[:, 0].max() == 49 and pts[:, 1].min() == 10 and pts[:, 1].max() == 29
    empty = np.zeros((60, 80), np.float32)
    assert mask_polygon(empty, (5, 6, 7, 8), 8) == [5, 6, 12, 6, 12, 14, 5, 14]
    assert mask_polygon(empty, (5, 6, 7, 8), 4) == [5, 6, 7, 8]


def test_example_runs_on_cpu(tmp_path):
    """examples/pysot_tracker.py sets cfg.CUDA from the machine (pysot defaults to CUDA)."""
    need(PYSOT)
    env = {"PYTHONPATH": str(PYSOT), "PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "pysot_tracker.py"),
            "--config",
            str(PYSOT / "experiments" / "siamrpn_alex_dwxcorr" / "config.yaml"),
            "--max-frames",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [x for x in r.stdout.splitlines() if x[:1].isdigit()]
    assert len(lines) == 2 and "random weights" in r.stdout


def test_attributes_set_on_the_wrapper_reach_the_base_tracker(pysot, refiner, clip):
    """A drop-in replacement: writing a base tracker's attribute through the wrapper changes the
    base tracker, and later reads see the new value; the wrapper's own options stay its own."""
    frames, gt = clip
    base = pysot("siamrpn_alex_dwxcorr")
    t = RefinedTracker(base, refiner.clone())
    t.init(frames[0], list(gt[0]))
    t.center_pos = np.array([100.0, 120.0])
    t.size = np.array([30.0, 40.0])
    np.testing.assert_array_equal(base.center_pos, [100.0, 120.0])
    np.testing.assert_array_equal(t.size, [30.0, 40.0])
    assert "center_pos" not in vars(t) and "size" not in vars(t)
    t.mask, t.min_size = True, 12.0  # the wrapper's options
    assert t.mask is True and t.min_size == 12.0 and not isinstance(getattr(base, "mask", None), bool)
    t.note = "mine"  # a new name stays on the wrapper
    assert t.note == "mine" and not hasattr(base, "note")
    out = t.track(frames[1])  # tracking continues from the state written through the wrapper
    assert np.isfinite(out["bbox"]).all()
