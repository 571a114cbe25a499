"""Model card (README.md) written beside a trained model."""

from __future__ import annotations

from typing import Any, Dict, List

from .config import TrainConfig

LICENCE_NOTES = {
    "davis": "DAVIS-2016 (research benchmark; treat as CC BY-NC 4.0)",
    "otb": "OTB-2015 / UAV123 (research benchmarks, no explicit licence)",
    "coco": "COCO (annotations CC BY 4.0, images under their Flickr licences)",
}


def model_card(cfg: TrainConfig, info: Dict[str, Any], counts: Dict[str, int], history: List[dict]) -> str:
    """Markdown: what the model is, what it saw, under which terms, and its validation numbers."""
    lines = [
        f"# {cfg.name}",
        "",
        f"Alpha-Refine-style box/mask refiner, architecture `{cfg.architecture}`, trained with "
        '`alpharefine-sdk train`. Load with `Refiner.from_pretrained("<this folder>")`.',
        "",
        "## Training",
        "",
        f"- samples seen: {info['samples_seen']:,} (global batch {cfg.batch_size}), "
        f"{info['training_minutes']} min, precision {cfg.precision}",
        f"- Adam lr {cfg.lr:g}, halved every {cfg.lr_halve_every:,} samples; loss = MSE(corners / 256) "
        f"+ {cfg.mask_weight:.5f} x BCE(mask) (the paper's lambda 1000 on raw pixels)",
        f"- backbone init: {'ImageNet MobileNetV2 (torchvision layout)' if cfg.backbone_init else 'random'}; "
        f"blocks features[:{cfg.freeze_blocks}] frozen",
        "- sources (kind, weight, items):",
    ]
    for i, s in enumerate(cfg.sources):
        n = counts.get(f"{i}:{s.kind}:{s.root}", "?")
        lines.append(f"  - {s.kind} from `{s.root}` ({s.format}), weight {s.weight:g}, {n} items")
    lines += [
        f"- validation (whole held-out sequences, never trained on): {', '.join(cfg.validation.sequences) or 'none'}",
        "",
        "## Validation (jittered ground truth, IoU in the search crop)",
        "",
        "| samples | loss | IoU before | IoU after | share improved |",
        "|---:|---:|---:|---:|---:|",
    ]
    for h in history[-10:]:
        lines.append(
            f"| {h['samples']:,} | {h['val_loss']:.4f} | {h['val_iou_before']:.3f} | {h['val_iou_after']:.3f} "
            f"| {h['val_better_share']:.2f} |"
        )
    lines += [
        "",
        "## Licences and terms",
        "",
        "Code: Apache-2.0. The weights were trained on research datasets; check their terms before any "
        "commercial use: " + "; ".join(LICENCE_NOTES.values()) + ". ImageNet-initialised backbone "
        "(torchvision MobileNetV2, BSD-3-Clause; ImageNet terms are non-commercial research).",
        "",
    ]
    return "\n".join(lines)
