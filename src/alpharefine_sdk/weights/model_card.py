"""The ``README.md`` model card written next to saved weights, with the Hub's metadata block."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from .._version import __version__
from ..config import ModelConfig

LIBRARY_NAME = "alpharefine-sdk"
CARD_MARKER = f"library_name: {LIBRARY_NAME}"
TAGS = (
    "alpharefine-sdk",
    "visual-object-tracking",
    "bounding-box-refinement",
    "alpha-refine",
    "pytorch",
    "safetensors",
)

# Licence ids the Hub knows; anything else is written as ``license: other`` plus a ``license_name``.
_HUB_LICENSES = {
    "apache-2.0",
    "mit",
    "bsd-2-clause",
    "bsd-3-clause",
    "gpl-2.0",
    "gpl-3.0",
    "lgpl-3.0",
    "agpl-3.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc0-1.0",
    "openrail",
    "unknown",
}

CITATION = """@inproceedings{yan2021alpha,
  title     = {Alpha-Refine: Boosting Tracking Performance by Precise Bounding Box Estimation},
  author    = {Yan, Bin and Zhang, Xinyu and Wang, Dong and Lu, Huchuan and Yang, Xiaoyun},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2021}
}"""


def hub_license(text: str) -> Dict[str, str]:
    """Map the free-text ``config.license`` to the Hub's ``license`` (+ ``license_name``) fields."""
    t = (text or "unknown").strip().lower()
    if t in _HUB_LICENSES:
        return {"license": t}
    slug = re.sub(r"[^a-z0-9]+", "-", t).strip("-")[:60] or "custom"
    return {"license": "other", "license_name": slug}


def _yaml_scalar(v: str) -> str:
    return (
        v if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )


def metadata_block(config: ModelConfig, extra_tags: Optional[List[str]] = None) -> str:
    """The YAML front matter the Hub reads (library, licence, tags)."""
    lines = ["---", CARD_MARKER]
    for k, v in hub_license(config.license).items():
        lines.append(f"{k}: {_yaml_scalar(v)}")
    lines.append("tags:")
    for t in list(TAGS) + [t for t in (extra_tags or []) if t not in TAGS]:
        lines.append(f"- {_yaml_scalar(t)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def render_model_card(
    config: ModelConfig,
    *,
    repo_id: Optional[str] = None,
    weights_sha256: Optional[str] = None,
    num_parameters: Optional[int] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> str:
    """Markdown model card: metadata block, usage, preprocessing contract, provenance, licence."""
    pre = config.preprocessing
    source = repo_id or "path/to/this/folder"
    rows = [
        ("architecture", f"`{config.architecture}`"),
        ("format_version", str(config.format_version)),
        ("source", config.source or "not recorded"),
        ("saved by", f"alpharefine-sdk {__version__}"),
    ]
    if weights_sha256:
        rows.append(("model.safetensors sha256", f"`{weights_sha256}`"))
    if num_parameters is not None:
        rows.append(("parameters", f"{num_parameters:,}"))
    for k, v in (extra or {}).items():
        rows.append((k, str(v)))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"""{metadata_block(config)}
# Alpha-Refine refiner (`{config.architecture}`) for alpharefine-sdk

A box (and mask) refiner for visual object trackers, in the format of alpharefine-sdk
(`pip install alpharefine-sdk`), a clean-room re-implementation of Alpha-Refine (CVPR 2021). Give it the frame and the box your tracker found; it returns a tighter box.

## Use

```python
from alpharefine_sdk import Refiner

refiner = Refiner.from_pretrained("{source}")
refiner.initialize(first_frame, first_box)           # RGB uint8 frame, box (x, y, w, h)
box, mask = refiner.refine(frame, tracker_box, mask=True)
```

## Files

- `model.safetensors`: the weights (safetensors, no pickle, loaded strictly).
- `config.json`: architecture name, preprocessing contract and `format_version`.

## Preprocessing contract

Search region {pre.search_factor:g} x the box, resized to {pre.input_size} x {pre.input_size}, {pre.color},
normalised with mean {tuple(pre.mean)} and std {tuple(pre.std)}; template: the central
{pre.template_cells} x {pre.template_cells} cells of the stride-{pre.stride} feature map.

## Provenance

| field | value |
|---|---|
{table}

## Licence

Weights licence: {config.license}. The alpharefine-sdk code is Apache-2.0; the licence above is the
one of these weights, which may differ (see `docs/weights.md` of alpharefine-sdk).

## Citation

```bibtex
{CITATION}
```
"""
