"""Model cards: one renderer (huggingface_hub.ModelCard / ModelCardData) for save, convert, push
and the packaged models; convert and push keep a packaged model's own card."""

from __future__ import annotations

import pytest
from hub_server import LoopbackHub, point_hf_at, refuse_non_loopback
from tiny import tiny_refiner

from alpharefine_sdk import Refiner
from alpharefine_sdk.cli import main
from alpharefine_sdk.config import ModelConfig
from alpharefine_sdk.weights.model_card import render_model_card
from alpharefine_sdk.weights.resolve import PACKAGE_MODELS

ModelCard = pytest.importorskip("huggingface_hub").ModelCard
PACKAGED = PACKAGE_MODELS / "mnv2-shared-v2"


def test_packaged_card_has_hub_metadata_and_held_out_results():
    card = ModelCard.load(PACKAGED / "README.md")
    d = card.data
    assert d.library_name == "alpharefine-sdk" and d.pipeline_tag == "object-detection"
    assert d.license == "other" and d.license_name == "research-datasets" and d.license_link is None
    assert "DAVIS-2016" in d.datasets and "alpharefine-sdk" in d.tags
    results = {(r.metric_type, r.metric_name): r.metric_value for r in d.eval_results}
    assert len(results) == 6 and results[("mean_iou", "mean IoU, OpenCV CSRT + refiner + gate (base 0.659)")] == 0.714
    for section in ("## Training", "## Licences and terms", "## Held-out evaluation", "## Gate choice"):
        assert section in card.text


def test_render_is_idempotent_on_an_existing_card():
    text = (PACKAGED / "README.md").read_text()
    config = ModelConfig.from_dict(__import__("json").loads((PACKAGED / "config.json").read_text()))
    assert render_model_card(config, body=text) == text


def test_convert_keeps_the_packaged_card(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["convert", "mnv2-shared-v2", str(out)]) == 0
    written, packaged = ModelCard.load(out / "README.md"), ModelCard.load(PACKAGED / "README.md")
    assert written.text == packaged.text and written.data.to_dict() == packaged.data.to_dict()
    assert Refiner.from_pretrained(out, device="cpu").config.extra["name"] == "mnv2-shared-v2"


def test_push_to_hub_uploads_the_packaged_card(tmp_path, monkeypatch, capsys):
    attempts = refuse_non_loopback(monkeypatch)
    with LoopbackHub(tmp_path / "hub", lifetime=120) as hub:
        point_hf_at(monkeypatch, hub.url, tmp_path / "home")
        assert main(["convert", "mnv2-shared-v2", str(tmp_path / "o"), "--push-to-hub", "org/v2"]) == 0
        files = hub.store.tree("org/v2", hub.store.resolve("org/v2", "main"))
    pushed = ModelCard(files["README.md"].decode())
    assert pushed.text == ModelCard.load(PACKAGED / "README.md").text
    assert len(pushed.data.eval_results) == 6
    assert not attempts


def test_generic_card_for_a_model_without_one(tmp_path):
    r = tiny_refiner()
    r.save_pretrained(tmp_path / "m", repo_id="org/tiny")
    card = ModelCard.load(tmp_path / "m" / "README.md")
    assert card.data.library_name == "alpharefine-sdk" and card.data.license == "apache-2.0"
    assert card.data.eval_results is None
    assert 'Refiner.from_pretrained("org/tiny")' in card.text and "sha256" in card.text
