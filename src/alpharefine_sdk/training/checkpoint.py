"""Training checkpoints in a format that cannot carry code.

A checkpoint is two files in the run folder: ``checkpoint.safetensors`` (every tensor: the model,
the optimizer's moments, the torch RNG state) and ``checkpoint.json`` (everything else: counters,
history, config, optimizer hyper-parameters, numpy and Python RNG states, and the sha256 of the
tensor file so a torn pair is refused). Nothing is unpickled on load. Older ``checkpoint.pt``
pickles are refused, not loaded.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from .._files import file_sha256

CHECKPOINT = "checkpoint.json"
TENSORS = "checkpoint.safetensors"
FORMAT = "alpharefine-sdk/train-checkpoint/2"
MAX_JSON_BYTES = 64 << 20


class CheckpointError(ValueError):
    """A training checkpoint that is missing, torn, foreign or unsafe."""


@dataclass
class Checkpoint:
    model: Dict[str, torch.Tensor]
    optimizer: Dict[str, Any]
    scheduler: Dict[str, Any]
    scaler: Optional[Dict[str, Any]]
    info: Dict[str, Any]


def _split_optimizer(opt: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    state = {}
    for idx, entry in opt["state"].items():
        plain = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{idx}/{name}"] = value.detach().cpu().contiguous()
                plain[name] = {"tensor": f"optimizer/{idx}/{name}"}
            else:
                plain[name] = value
        state[str(idx)] = plain
    return {"state": state, "param_groups": opt["param_groups"]}


def _join_optimizer(opt: Dict[str, Any], tensors: Dict[str, torch.Tensor]) -> Dict[str, Any]:
    state = {}
    for idx, entry in opt["state"].items():
        state[int(idx)] = {
            k: tensors[v["tensor"]] if isinstance(v, dict) and "tensor" in v else v for k, v in entry.items()
        }
    return {"state": state, "param_groups": opt["param_groups"]}


def save_checkpoint(
    folder: Union[str, Path],
    *,
    model: Dict[str, torch.Tensor],
    optimizer: Dict[str, Any],
    scheduler: Dict[str, Any],
    scaler: Optional[Dict[str, Any]],
    info: Dict[str, Any],
) -> Path:
    """Write ``checkpoint.safetensors`` then ``checkpoint.json`` (each an atomic replace)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.items()}
    opt = _split_optimizer(optimizer, tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    tmp = folder / (TENSORS + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, folder / TENSORS)
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "format": FORMAT,
        "tensors_sha256": file_sha256(folder / TENSORS),
        "optimizer": opt,
        "scheduler": scheduler,
        "scaler": scaler,
        "rng": {
            "numpy": [np_state[0], np_state[1].tolist(), *map(float, np_state[2:])],
            "python": [py_state[0], list(py_state[1]), py_state[2]],
        },
        "info": info,
    }
    tmp = folder / (CHECKPOINT + ".tmp")
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / CHECKPOINT)
    return folder / CHECKPOINT


def load_checkpoint(path: Union[str, Path], *, device: Any = "cpu", restore_rng: bool = True) -> Checkpoint:
    """Read a checkpoint (the run folder or its ``checkpoint.json``); no pickle is involved."""
    from safetensors.torch import load_file

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    meta_path, tensor_path = folder / CHECKPOINT, folder / TENSORS
    if not meta_path.is_file():
        old = folder / "checkpoint.pt"
        hint = (
            f" ({old} is an older pickle checkpoint, which is never loaded because a pickle can run code;"
            " restart the run, or convert it once with a trusted script)"
            if old.exists()
            else ""
        )
        raise CheckpointError(f"no training checkpoint at {meta_path}{hint}")
    for p in (meta_path, tensor_path):
        if not p.is_file():
            raise CheckpointError(f"{p} is missing or not a regular file")
    if meta_path.stat().st_size > MAX_JSON_BYTES:
        raise CheckpointError(f"{meta_path} is larger than {MAX_JSON_BYTES >> 20} MiB; not a checkpoint of ours")
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} is not an alpharefine-sdk training checkpoint (format {FORMAT!r})")
    if file_sha256(tensor_path) != meta.get("tensors_sha256"):
        raise CheckpointError(f"{tensor_path} does not match {meta_path} (torn or replaced checkpoint)")
    try:
        tensors = load_file(str(tensor_path), device=str(device))
    except Exception as e:  # safetensors' own error type is not public API
        raise CheckpointError(f"{tensor_path} is not a valid safetensors file ({e})") from None
    model = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        optimizer = _join_optimizer(meta["optimizer"], tensors)
        if restore_rng:
            torch.set_rng_state(tensors["rng/torch"].cpu())
            n = meta["rng"]["numpy"]
            np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), int(n[2]), int(n[3]), float(n[4])))
            p = meta["rng"]["python"]
            random.setstate((p[0], tuple(p[1]), p[2]))
        return Checkpoint(model, optimizer, meta["scheduler"], meta.get("scaler"), meta["info"])
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise CheckpointError(f"{meta_path} is incomplete or malformed ({type(e).__name__}: {e})") from None
