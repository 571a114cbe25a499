"""scripts/model_card.py: the shipped folder keeps the whole gate that was evaluated (score margin too)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from alpharefine_sdk.gate import Gate

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "model_card.py"


def _script():
    spec = importlib.util.spec_from_file_location("model_card_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("margin", [-0.03, None])
def test_shipped_config_keeps_the_evaluated_gate(tmp_path, margin):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    (run / "README.md").write_text("# run card\n")
    config = json.loads((ROOT / "models" / "mnv2-cmi-v5" / "config.json").read_text())
    del config["extra"]["gate"]  # a training run's folder has none
    (run / "config.json").write_text(json.dumps(config))
    gate = {"min_iou": 0.1, "area_ratio": [0.0, 1e9], "max_iou": 1.0, "score_margin": margin}
    grid = {"sequences": ["camel"], "counts": {"csrt": 3}, "rows": [{"gate": "g", "csrt": 0.7, "mean": 0.7}]}
    (tmp_path / "grid.json").write_text(json.dumps(grid))
    held = tmp_path / "held"
    held.mkdir()
    (held / "results.json").write_text(json.dumps({"gate": gate, "sequences": ["Crossing"]}))
    (held / "table.md").write_text("## Jitter test\n\n| a |\n|---|\n| 1 |\n")
    dest = tmp_path / "shipped"
    args = ["--model", str(run), "--gate", str(tmp_path / "grid.json"), "--heldout", str(held)]
    assert _script().main([*args, "--dest", str(dest), "--status", "opt-in"]) == 0

    shipped = json.loads((dest / "config.json").read_text())["extra"]["gate"]
    assert Gate(**shipped) == Gate(**{k: v for k, v in gate.items() if v is not None})
    card = (dest / "README.md").read_text()
    assert ("score_margin -0.03" in card) == (margin is not None)
    assert (dest / "model.safetensors").read_bytes() == b"weights"
