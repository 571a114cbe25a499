"""The model trained here and shipped in the package: loads by name, is small, documents itself,
and refines jittered boxes on a held-out sequence better than leaving them alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, need

from alpharefine_sdk.weights.resolve import PACKAGE_MODELS

SHIPPED = sorted(
    p
    for p in PACKAGE_MODELS.glob("*")
    if (p / "config.json").is_file() and json.loads((p / "config.json").read_text()).get("architecture") == "mnv2_cm"
)


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED:
        pytest.fail(f"no trained mnv2_cm model folder under {PACKAGE_MODELS}")
    return SHIPPED[0]


def test_folder_is_complete_and_small(shipped):
    files = {p.name: p.stat().st_size for p in shipped.iterdir()}
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert sum(files.values()) < 20e6
    card = (shipped / "README.md").read_text()
    for word in ("Held-out", "CSRT", "MIL", "NanoTrack", "samples", "Licen", "camel"):
        assert word in card, word


def test_loads_by_name_and_helps_on_jittered_held_out_boxes(shipped):
    """Hard jitter (scale 0.5, centre 0.5) of blackswan's ground truth, a sequence never trained on."""
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.boxes import iou
    from alpharefine_sdk.eval.datasets import load_sequence
    from alpharefine_sdk.training.augment import Jitter

    r = Refiner.from_pretrained(shipped.name, device="cpu")
    assert r.config.architecture == "mnv2_cm" and r.config.extra["samples_seen"] > 10000
    seq = load_sequence(need(DATA / "sequences" / "davis" / "JPEGImages" / "480p" / "blackswan"))
    r.initialize(seq.frame(0), seq.gt[0])
    rng = np.random.default_rng(0)
    before, after = [], []
    for i in range(1, 50, 3):
        gt = seq.gt[i]
        jb = Jitter(0.5, 0.5).apply(gt, rng)
        before.append(iou(jb, gt))
        after.append(iou(r.refine(seq.frame(i), jb).box, gt))
    assert np.mean(after) > np.mean(before) + 0.05, (np.mean(before), np.mean(after))


def test_default_model_is_a_shipped_model_with_its_gate():
    """Refiner.from_pretrained() loads the packaged default: a trained model with a held-out table
    in its card and the gate that table was measured with."""
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.gate import Gate
    from alpharefine_sdk.weights.resolve import default_model_dir

    d = default_model_dir()
    assert d is not None and d in SHIPPED
    card = (d / "README.md").read_text()
    assert "Default-model criterion met: **True**" in card
    r = Refiner.from_pretrained(device="cpu")
    spec = json.loads((d / "config.json").read_text())["extra"]["gate"]
    assert r.gate == Gate(spec["min_iou"], tuple(spec["area_ratio"]), spec["max_iou"])
    assert Refiner.from_pretrained(device="cpu", gate=None).gate is None
