"""Core behaviour on the tiny test architecture and the sample sequence shipped in the repository:
nothing outside the repository is needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny import ROOT_DATA, tiny_refiner

from alpharefine_sdk import Gate, RefinedTracker, Refiner, list_models
from alpharefine_sdk.eval.datasets import load_sequence

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def seq():
    return load_sequence(ROOT_DATA)


@pytest.fixture(scope="module")
def frames(seq):
    return [seq.frame(i) for i in range(4)]  # RGB


def test_sample_sequence_is_real_and_small(seq):
    assert seq.kind == "otb" and len(seq) == 120
    assert seq.frame(0).shape == (240, 360, 3)
    size = sum(f.stat().st_size for f in ROOT_DATA.rglob("*") if f.is_file())
    assert size <= 3 * 2**20


def test_refine_result_reads_like_the_tuple_box_mask(seq, frames):
    r = tiny_refiner()
    r.initialize(frames[0], seq.gt[0])
    res = r.refine(frames[1], seq.gt[1], mask=True)
    box, mask = res
    assert box is res.box and mask is res.mask
    assert res[0] is res.box and res[1] is res.mask and res[-1] is res.mask and res[-2] is res.box
    assert len(res) == 2 and tuple(res) == (res.box, res.mask) and res[:1] == (res.box,)
    with pytest.raises(IndexError):
        res[2]
    assert np.isfinite(res.box).all() and res.mask.shape == frames[1].shape[:2]
    assert r.refine(frames[1], seq.gt[1])[1] is None


def test_save_pretrained_from_pretrained_round_trip(tmp_path, seq, frames):
    r = tiny_refiner(seed=3)
    r.save_pretrained(tmp_path / "m")
    back = Refiner.from_pretrained(tmp_path / "m", device="cpu")
    assert back.config.architecture == "tiny_test"
    for a in (r, back):
        a.initialize(frames[0], seq.gt[0])
    for i in (1, 2, 3):
        x, y = r.refine(frames[i], seq.gt[i], mask=True), back.refine(frames[i], seq.gt[i], mask=True)
        np.testing.assert_allclose(x.box, y.box, atol=1e-3)  # the loaded copy may run on another backend
        np.testing.assert_allclose(x.mask, y.mask, atol=1e-5)


def test_gate_means_the_same_everywhere(tmp_path):
    spec = {"min_iou": 0.3, "area_ratio": [0.5, 2.0], "max_iou": 0.95}
    t = tiny_refiner(gate=None)
    t.save_pretrained(tmp_path / "plain")
    cfg = json.loads((tmp_path / "plain" / "config.json").read_text())
    cfg["extra"]["gate"] = spec
    (tmp_path / "gated").mkdir()
    (tmp_path / "gated" / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "gated" / "model.safetensors").write_bytes((tmp_path / "plain" / "model.safetensors").read_bytes())
    recommended = Gate(**spec)
    mine = Gate(min_iou=0.5)
    # Refiner.from_pretrained: "auto" = the model's gate, None = none, a Gate = that gate
    assert Refiner.from_pretrained(tmp_path / "gated", device="cpu").gate == recommended
    assert Refiner.from_pretrained(tmp_path / "gated", device="cpu", gate=None).gate is None
    assert Refiner.from_pretrained(tmp_path / "gated", device="cpu", gate=mine).gate is mine
    assert Refiner.from_pretrained(tmp_path / "plain", device="cpu").gate is None  # the model names none
    # RefinedTracker: "auto" keeps the refiner's gate, None turns it off, a Gate replaces it
    gated = Refiner.from_pretrained(tmp_path / "gated", device="cpu")
    assert RefinedTracker(cv2.TrackerMIL.create(), gated.clone()).refiner.gate == recommended
    assert RefinedTracker(cv2.TrackerMIL.create(), gated.clone(), gate=None).refiner.gate is None
    assert RefinedTracker(cv2.TrackerMIL.create(), gated.clone(), gate=mine).refiner.gate is mine
    for bad, err in (("off", ValueError), ("none", ValueError), (0.5, TypeError)):
        with pytest.raises(err, match="gate must be 'auto', None or"):
            Refiner.from_pretrained(tmp_path / "gated", device="cpu", gate=bad)
        with pytest.raises(err, match="gate must be 'auto', None or"):
            RefinedTracker(cv2.TrackerMIL.create(), t.clone(), gate=bad)


def test_exports_and_model_names():
    import alpharefine_sdk

    assert {"Gate", "list_models", "Refiner", "RefineResult", "RefinedTracker"} <= set(alpharefine_sdk.__all__)
    names = list_models()
    assert names[0] == "mnv2-shared-v2"  # the packaged default first
    assert "mnv2-shared-v1" not in names  # superseded: in the repository's models/, not the package


def test_superseded_model_loads_from_the_repository_folder():
    folder = ROOT_DATA.parents[1] / "models" / "mnv2-shared-v1"
    r = Refiner.from_pretrained(folder, device="cpu")
    assert r.config.extra["name"] == "mnv2-shared-v1"
    assert r.gate == Gate(min_iou=0.1, area_ratio=(0.33, 3.0), max_iou=0.85)


def test_repository_models_load_with_their_gates_and_v5_keeps_v4s_boxes():
    """Every opt-in model of the repository's models/ loads by folder with the gate its card states;
    mnv2-cmi-v5 trained only its IoU head, so every other tensor equals mnv2-cmi-v4's."""
    import torch

    from alpharefine_sdk.weights.resolve import load_source

    models = ROOT_DATA.parents[1] / "models"
    for folder in sorted(p for p in models.iterdir() if (p / "config.json").is_file()):
        r = Refiner.from_pretrained(folder, device="cpu", backend="torch")
        assert r.config.extra["name"] == folder.name
        assert r.gate is not None  # each card states the gate chosen on the validation sequences
        assert r.engine.scores == r.config.architecture.startswith("mnv2_cmi")
    v4 = load_source(models / "mnv2-cmi-v4")[0].state_dict()
    v5 = load_source(models / "mnv2-cmi-v5")[0].state_dict()
    shared = [k for k in v5 if not k.startswith("iou_head.")]
    assert shared and all(torch.equal(v4[k], v5[k]) for k in shared)
    assert Refiner.from_pretrained(models / "mnv2-cmi-v5", device="cpu").gate == Gate(
        min_iou=0.1, area_ratio=(0.0, 1e9), max_iou=1.0, score_margin=-0.03
    )
    for name, margin in (("mnv2-cmi-v6", -0.01), ("mnv2-cmi-v11", 0.0)):
        assert Refiner.from_pretrained(models / name, device="cpu").gate == Gate(
            min_iou=0.1, area_ratio=(0.0, 1e9), max_iou=1.0, score_margin=margin
        )
