"""Turn a training checkpoint into a model folder without training (``train CONFIG --export-only``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from ..config import ModelConfig
from ..nn.registry import build_net
from .card import model_card
from .config import TrainConfig


def export_checkpoint(checkpoint: Union[str, Path], folder: Optional[Union[str, Path]] = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` + ``README.md`` from a ``checkpoint.pt``."""
    from ..weights.io import save_model_folder

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no training checkpoint at {checkpoint}")
    # Our own file (written by Trainer.save); it holds RNG states, hence weights_only=False.
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = TrainConfig.from_dict(state["config"])
    net = build_net(cfg.architecture)
    net.load_state_dict(state["model"])
    history = list(state.get("history", []))
    info = {
        "trained_with": "alpharefine-sdk train",
        "name": cfg.name,
        "samples_seen": int(state["samples"]),
        "training_minutes": round(float(state.get("elapsed_s", 0.0)) / 60, 1),
        "validation_sequences": list(cfg.validation.sequences),
        "validation": history[-1] if history else None,
    }
    config = ModelConfig(
        architecture=cfg.architecture,
        license="weights: see README.md (trained on research datasets)",
        source=f"trained with alpharefine-sdk ({cfg.name})",
        extra=info,
    )
    folder = Path(folder) if folder is not None else checkpoint.parent / "model"
    save_model_folder(net.eval(), config, folder, overwrite=True)
    counts = dict(state.get("source_counts") or {})
    (folder / "README.md").write_text(model_card(cfg, info, counts, history))
    return folder
