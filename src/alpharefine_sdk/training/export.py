"""Trained-model export: one writer for the model folder, used by the trainer and by
``train CONFIG --export-only`` (from a checkpoint, without training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch

from ..config import ModelConfig
from ..nn.registry import build_net
from .card import model_card
from .checkpoint import load_checkpoint
from .config import TrainConfig


def write_model_folder(
    cfg: TrainConfig,
    state: Dict[str, torch.Tensor],
    folder: Union[str, Path],
    *,
    samples: int,
    elapsed_s: float,
    history: List[dict],
    source_counts: Dict[str, Any],
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` + ``README.md`` for ``Refiner.from_pretrained``."""
    from ..weights.io import save_model_folder
    from ..weights.model_card import render_model_card

    net = build_net(cfg.architecture)
    net.load_state_dict({k: v.detach().cpu().contiguous() for k, v in state.items()})
    info = {
        "trained_with": "alpharefine-sdk train",
        "name": cfg.name,
        "samples_seen": int(samples),
        "training_minutes": round(float(elapsed_s) / 60, 1),
        "validation_sequences": list(cfg.validation.sequences),
        "validation": history[-1] if history else None,
    }
    config = ModelConfig(
        architecture=cfg.architecture,
        preprocessing=cfg.preprocessing(),
        license="weights: see README.md (trained on research datasets)",
        source=f"trained with alpharefine-sdk ({cfg.name})",
        extra=info,
    )
    folder = save_model_folder(net.eval(), config, Path(folder), overwrite=True)
    body = model_card(cfg, info, dict(source_counts or {}), history)
    (folder / "README.md").write_text(render_model_card(config, body=body))
    return folder


def export_checkpoint(checkpoint: Union[str, Path], folder: Optional[Union[str, Path]] = None) -> Path:
    """Write the model folder from a training checkpoint (the run folder or its ``checkpoint.json``)."""
    checkpoint = Path(checkpoint)
    ck = load_checkpoint(checkpoint, restore_rng=False)
    info = ck.info
    cfg = TrainConfig.from_dict(info["config"])
    run_dir = checkpoint if checkpoint.is_dir() else checkpoint.parent
    return write_model_folder(
        cfg,
        ck.model,
        Path(folder) if folder is not None else run_dir / "model",
        samples=int(info["samples"]),
        elapsed_s=float(info.get("elapsed_s", 0.0)),
        history=list(info.get("history", [])),
        source_counts=dict(info.get("source_counts") or {}),
    )
