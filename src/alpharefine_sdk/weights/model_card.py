"""The ``README.md`` model card written next to saved weights: the one renderer, built on
``huggingface_hub.ModelCard`` / ``ModelCardData`` (Hub metadata and ``model-index``)."""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

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
    """Map the free-text ``config.license`` to the Hub's ``license`` (+ ``license_name``) fields.
    No ``license_link``: the terms are in the card itself (a link to it would point at itself)."""
    t = (text or "unknown").strip().lower()
    if t in _HUB_LICENSES:
        return {"license": t}
    slug = re.sub(r"[^a-z0-9]+", "-", t).strip("-")[:60] or "custom"
    return {"license": "other", "license_name": slug}


PIPELINE_TAG = "object-detection"


def card_data(config: ModelConfig) -> Any:
    """``huggingface_hub.ModelCardData`` for a model: library, licence, tags, pipeline tag and, from
    ``config.extra``, ``datasets``, ``base_model`` and the held-out results (``eval_results``: a
    list of ``{"task", "dataset", "metric", "value", "name"}``) as the card's ``model-index``."""
    from huggingface_hub import EvalResult, ModelCardData

    extra = config.extra or {}
    results = [
        EvalResult(
            task_type="object-tracking",
            task_name=r.get("task", "box refinement of a base tracker"),
            dataset_type=r.get("dataset_type", "custom"),
            dataset_name=r["dataset"],
            metric_type=r["metric"],
            metric_name=r.get("name", r["metric"]),
            metric_value=r["value"],
        )
        for r in extra.get("eval_results", [])
    ]
    return ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        tags=list(TAGS),
        datasets=list(extra["datasets"]) if extra.get("datasets") else None,
        base_model=extra.get("base_model"),
        model_name=extra.get("name") or f"alpharefine-sdk {config.architecture}",
        eval_results=results or None,
        **hub_license(config.license),
    )


def render_model_card(
    config: ModelConfig,
    *,
    repo_id: Optional[str] = None,
    weights_sha256: Optional[str] = None,
    num_parameters: Optional[int] = None,
    extra: Optional[Dict[str, Any]] = None,
    body: Optional[str] = None,
) -> str:
    """The one model-card writer (save, convert, push, packaged models): the Hub metadata from
    :func:`card_data`, then ``body`` (an existing card's text, its old metadata dropped: a packaged
    or trained model keeps its own card) or, without one, a generic card: usage, preprocessing
    contract, provenance, licence, citation."""
    from huggingface_hub import ModelCard

    if body is not None:
        text = ModelCard(body).text if body.lstrip().startswith("---") else body
    else:
        text = _generic_body(config, repo_id, weights_sha256, num_parameters, extra)
    card = ModelCard(f"---\n{card_data(config).to_yaml()}\n---\n\n{text.lstrip()}")
    return str(card.content).rstrip("\n") + "\n"


def _generic_body(
    config: ModelConfig,
    repo_id: Optional[str],
    weights_sha256: Optional[str],
    num_parameters: Optional[int],
    extra: Optional[Dict[str, Any]],
) -> str:
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
    return f"""
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
one of these weights, which may differ.

## Citation

```bibtex
{CITATION}
```
"""
