"""The do-no-harm gate: its rule, its argument checks, and its effect inside Refiner."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DATA, need

from alpharefine_sdk.gate import DEFAULT_AREA_RATIO, DEFAULT_MAX_IOU, DEFAULT_MIN_IOU, Gate


def test_accepts_small_changes_and_rejects_large_ones():
    g = Gate(min_iou=0.6, area_ratio=(0.6, 1.6), max_iou=1.0)
    base = (100.0, 50.0, 40.0, 30.0)
    assert g.accept(base, base)
    assert g.accept(base, (102.0, 51.0, 38.0, 31.0))
    assert not g.accept(base, (130.0, 50.0, 40.0, 30.0))  # IoU 0.14: moved off
    assert not g.accept(base, (95.0, 45.0, 80.0, 60.0))  # area x4, contains the input
    assert not g.accept(base, (110.0, 57.0, 20.0, 15.0))  # area x0.25


def test_thresholds_are_inclusive_and_can_be_disabled():
    base = (0.0, 0.0, 10.0, 10.0)
    half = (0.0, 0.0, 10.0, 5.0)  # IoU 0.5, area ratio 0.5
    assert Gate(min_iou=0.5, area_ratio=(0.5, 2.0)).accept(base, half)
    assert not Gate(min_iou=0.51, area_ratio=(0.5, 2.0)).accept(base, half)
    assert not Gate(min_iou=0.0, area_ratio=(0.51, 2.0)).accept(base, half)
    off = (50.0, 50.0, 10.0, 10.0)
    assert Gate(min_iou=0.0, area_ratio=(0.0, math.inf), max_iou=1.0).accept(base, off)


def test_max_iou_keeps_near_identical_boxes():
    base = (0.0, 0.0, 100.0, 100.0)
    tiny_change = (1.0, 1.0, 100.0, 100.0)  # IoU ~0.98
    change = (10.0, 0.0, 100.0, 100.0)  # IoU ~0.82
    g = Gate(min_iou=0.5, area_ratio=(0.5, 2.0), max_iou=0.9)
    assert not g.accept(base, tiny_change)
    assert g.accept(base, change)
    assert Gate(min_iou=0.5, area_ratio=(0.5, 2.0), max_iou=1.0).accept(base, tiny_change)


@pytest.mark.parametrize("bad", [(1, 2, 0, 3), (1, 2, -4, 3), (np.nan, 0, 1, 1), (0, 0, np.inf, 1)])
def test_degenerate_refined_boxes_are_rejected(bad):
    assert not Gate().accept((0, 0, 10, 10), bad)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"min_iou": 1.5}, "min_iou"),
        ({"min_iou": "high"}, "min_iou"),
        ({"area_ratio": (2.0, 3.0)}, "area_ratio"),
        ({"area_ratio": (0.5,)}, "area_ratio"),
        ({"area_ratio": None}, "area_ratio"),
        ({"min_iou": 0.5, "max_iou": 0.4}, "max_iou"),
        ({"max_iou": 1.2}, "max_iou"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Gate(**kwargs)


def test_defaults():
    g = Gate()
    assert g.min_iou == DEFAULT_MIN_IOU and tuple(g.area_ratio) == tuple(DEFAULT_AREA_RATIO)
    assert g.max_iou == DEFAULT_MAX_IOU


@pytest.fixture(scope="module")
def crossing():
    import cv2

    seq = need(DATA / "sequences" / "otb" / "Crossing")
    frame = cv2.cvtColor(cv2.imread(str(seq / "img" / "0002.jpg")), cv2.COLOR_BGR2RGB)
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")[:2]
    return frame, gt


def test_refiner_keeps_the_input_box_when_gated(refiner, crossing):
    frame, gt = crossing
    refiner.initialize(frame, gt[0])
    free = refiner.refine(frame, gt[1])
    assert not free.gated
    # a gate that only accepts a refined box equal (IoU 1) to its input blocks any real change
    refiner.gate = Gate(min_iou=1.0, area_ratio=(1.0, 1.0), max_iou=1.0)
    r = refiner.refine(frame, gt[1])
    assert r.gated and np.array_equal(r.box, np.asarray(gt[1], dtype=np.float64))
    assert np.array_equal(r.input_box, r.box)
    # an open gate lets the same refined box through
    refiner.gate = Gate(min_iou=0.0, area_ratio=(0.0, math.inf), max_iou=1.0)
    r2 = refiner.refine(frame, gt[1])
    assert not r2.gated and np.allclose(r2.box, free.box)


def test_from_pretrained_applies_the_gate_the_model_recommends(tmp_path):
    """gate="auto": a model whose config.json names a gate gets it; original weights get none."""
    import json
    import shutil

    from alpharefine_sdk import Refiner
    from alpharefine_sdk.weights.resolve import default_model_dir

    src = default_model_dir()
    folder = tmp_path / "m"
    shutil.copytree(src, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.setdefault("extra", {})["gate"] = {"min_iou": 0.2, "area_ratio": [0.5, 2.0], "max_iou": 0.9}
    (folder / "config.json").write_text(json.dumps(cfg))
    r = Refiner.from_pretrained(folder, device="cpu")
    assert r.gate == Gate(min_iou=0.2, area_ratio=(0.5, 2.0), max_iou=0.9)
    assert Refiner.from_pretrained(folder, device="cpu", gate=None).gate is None
    with pytest.raises(ValueError, match="gate must be 'auto'"):
        Refiner.from_pretrained(folder, device="cpu", gate="default")
    cfg["extra"]["gate"] = {"min_iou": 0.2, "bogus": 1}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="extra.gate"):
        Refiner.from_pretrained(folder, device="cpu")


def test_original_weights_run_ungated(ar34):
    assert ar34.gate is None
