"""Read original Alpha-Refine ``*.pth.tar`` checkpoints without running any pickled code.

The original trainer pickles its own classes (``ltr.admin.*``) next to the state dict. We unpickle
with a restricted ``find_class``: the few torch functions that rebuild tensors are allowed, classes
of the research code (and numpy scalars in training statistics) become inert records that hold
their state and do nothing, and every other global (``os.system``, ``builtins.eval``...) is refused
before anything runs. Both the legacy (torch < 1.6) and the zip serialization are handled by
``torch.load`` with this unpickler.
"""

from __future__ import annotations

import collections
import io
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Union

import torch

from ..errors import WeightsError

# Globals a tensor checkpoint legitimately needs. Storage classes are resolved by torch itself.
_ALLOWED: Dict[tuple, Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
}
for _name in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"):
    _ALLOWED[("torch", _name)] = getattr(torch, _name)
if hasattr(torch._utils, "_rebuild_tensor_v3"):
    _ALLOWED[("torch._utils", "_rebuild_tensor_v3")] = torch._utils._rebuild_tensor_v3

# Modules whose classes become inert records (research code, numpy scalars in training stats).
_INERT_PREFIXES = ("ltr.", "dlframework.", "pytracking.", "lib.", "numpy")


class InertRecord:
    """Stand-in for a foreign pickled class or callable: stores what it was given, does nothing."""

    _qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__["_kwargs"] = kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict, slotstate)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<inert {self._qualname}>"


_inert_classes: Dict[str, type] = {}


def _inert_class(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _inert_classes:
        _inert_classes[key] = type(name, (InertRecord,), {"_qualname": key, "__module__": "alpharefine_sdk.inert"})
    return _inert_classes[key]


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows tensor rebuilding, neutralises research classes and refuses the rest."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if any(module == p.rstrip(".") or module.startswith(p) for p in _INERT_PREFIXES):
            return _inert_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': not a tensor or a known checkpoint class "
            "(this file may be malicious or not an Alpha-Refine checkpoint)"
        )


def _restricted_pickle_module() -> types.ModuleType:
    mod = types.ModuleType("alpharefine_restricted_pickle")
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = lambda f, **kw: RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    mod.loads = lambda b, **kw: RestrictedUnpickler(io.BytesIO(b), **kw).load()  # type: ignore[attr-defined]
    mod.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    mod.__name__ = "pickle"  # torch checks the name for some protocol defaults
    return mod


@dataclass
class OriginalCheckpoint:
    """What we keep from an original checkpoint: the state dict and the constructor's arguments."""

    state_dict: Dict[str, torch.Tensor]
    constructor: Dict[str, Any] = field(default_factory=dict)
    net_type: str = ""
    epoch: Any = None


def load_original_checkpoint(path: Union[str, Path]) -> OriginalCheckpoint:
    """Read an original ``*.pth.tar`` (legacy or zip serialization), or a bare pickled state dict.

    Raises:
        WeightsError: the file is missing, corrupt, holds forbidden globals or no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", pickle_module=_restricted_pickle_module(), weights_only=False)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"refused to load {path}: {e}") from None
    except Exception as e:  # truncated, not a torch file, ...
        raise WeightsError(
            f"could not read {path} as a torch checkpoint ({type(e).__name__}: {e}); "
            "is the file complete? Re-download it and check its size."
        ) from None

    if isinstance(obj, dict) and "net" in obj:
        net = obj["net"]
        ctor = obj.get("constructor")
        ctor_info = {}
        if isinstance(ctor, InertRecord):
            ctor_info = {k: ctor.__dict__.get(k) for k in ("fun_name", "fun_module", "kwds") if k in ctor.__dict__}
        net_type = obj.get("net_type", "") if isinstance(obj.get("net_type", ""), str) else ""
        epoch = obj.get("epoch") if isinstance(obj.get("epoch"), int) else None
    elif isinstance(obj, dict):
        net, ctor_info, net_type, epoch = obj, {}, "", None
    else:
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict with a 'net' state dict")

    if not isinstance(net, dict) or not net:
        raise WeightsError(f"{path}: the 'net' entry is not a state dict")
    state: Dict[str, torch.Tensor] = {}
    for k, v in net.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k[len("module.") :] if k.startswith("module.") else k] = v
    return OriginalCheckpoint(state, ctor_info, net_type, epoch)
