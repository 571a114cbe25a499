"""Read original Alpha-Refine ``*.pth.tar`` checkpoints without running any code from the file.

The file is never handed to ``torch.load`` or ``torch.jit``: we parse both torch containers
ourselves. A zip checkpoint (torch >= 1.6) is read with :mod:`zipfile`: its ``*/data.pkl`` goes
through the restricted unpickler below and each tensor's bytes come from the archive's
``*/data/<key>`` entries. The legacy container (torch < 1.6: magic, protocol, system info, the
pickle, the storage keys, then the raw storages) is read the same way from memory. An archive
holding ``constants.pkl`` or ``code/`` is TorchScript (``torch.jit.save``), whose loading runs code
from the file: it is refused.

The restricted unpickler allows a handful of constructors (``OrderedDict``, ``torch.Size``, dtypes,
and our own tensor rebuild functions, which only record offsets and shapes), turns classes of the
research code (and numpy scalars in training statistics) into inert records that hold their state
and do nothing, and refuses every other global (``os.system``, ``builtins.eval``...) before
anything runs. Tensors are built from raw bytes with bounds checked against their storage.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from .._files import MAX_WEIGHTS_BYTES, check_regular_file, read_limited
from ..errors import WeightsError

MAX_PICKLE_BYTES = 256 << 20  # data.pkl of a real checkpoint is a few MB at most
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes named in torch pickles -> the dtype of their elements.
STORAGE_DTYPES: Dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}

# Modules whose classes become inert records (research code, numpy scalars in training stats).
_INERT_PREFIXES = ("ltr.", "dlframework.", "pytracking.", "lib.", "numpy")


class _Refused(pickle.UnpicklingError):
    """A global or record the file may not use (the file may be malicious)."""


# ------------------------------------------------------------------------------------ records
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
            self.__dict__.update({k: v for k, v in state.items() if isinstance(k, str)})
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


@dataclass(frozen=True)
class _StorageType:
    """What a pickled ``torch.FloatStorage`` (etc.) global becomes: just its dtype."""

    dtype: torch.dtype


@dataclass
class _Storage:
    """A storage named by the pickle; its bytes are attached once they are read."""

    key: str
    dtype: torch.dtype
    numel: int
    data: Optional[torch.Tensor] = None  # 1-D, ``numel`` elements
    root: Optional["_Storage"] = None  # legacy storage views: a slice of ``root``
    offset: int = 0

    def flat(self) -> torch.Tensor:
        if self.root is not None:
            return self.root.flat()[self.offset : self.offset + self.numel]
        if self.data is None:
            raise WeightsError(f"storage {self.key!r} has no data in the file")
        return self.data


@dataclass
class PendingTensor:
    """A tensor the pickle described; built from its storage by :func:`materialise`."""

    storage: _Storage
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]
    dtype: Optional[torch.dtype] = None  # _rebuild_tensor_v3 on an untyped storage


def _ints(v: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(v, (tuple, list)) or not all(type(x) is int and 0 <= x < 1 << 62 for x in v):
        raise _Refused(f"tensor {what} {v!r} is not a tuple of non-negative ints")
    return tuple(v)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> PendingTensor:
    if not isinstance(storage, _Storage):
        raise _Refused("a tensor without a storage from this file")
    if type(storage_offset) is not int or storage_offset < 0:
        raise _Refused(f"tensor offset {storage_offset!r} is not a non-negative int")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride) or len(size) > 32:
        raise _Refused(f"tensor size {size} and stride {stride} do not match")
    return PendingTensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    dtype: Any = None,
    *rest: Any,
) -> PendingTensor:
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    if not isinstance(dtype, torch.dtype) or dtype not in STORAGE_DTYPES.values():
        raise _Refused(f"tensor dtype {dtype!r} is not supported")
    t.dtype = dtype
    return t


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    if not isinstance(data, PendingTensor):
        raise _Refused("a parameter without tensor data")
    return data


def _latin1_encode(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``; nothing else."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode used for something other than bytes")
    return text.encode("latin1")


def _size(*args: Any) -> torch.Size:
    return torch.Size(_ints(args[0] if args else (), "size"))


# Globals a tensor checkpoint legitimately needs; the tensor functions are ours, not torch's.
_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _size,
    ("_codecs", "encode"): _latin1_encode,
}
for _dt in set(STORAGE_DTYPES.values()):
    _ALLOWED[("torch", str(_dt).split(".")[-1])] = _dt


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that records tensors, neutralises research classes and refuses every other global."""

    def __init__(self, file: Any, *, storages: Optional[Dict[str, _Storage]] = None, legacy: bool = False) -> None:
        super().__init__(file, encoding="latin1")
        self.storages = {} if storages is None else storages
        self.legacy = legacy

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module in ("torch", "torch.storage") and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        if any(module == p.rstrip(".") or module.startswith(p) for p in _INERT_PREFIXES):
            return _inert_class(module, name)
        raise _Refused(
            f"refusing to load global '{module}.{name}': not a tensor or a known checkpoint class "
            "(this file may be malicious or not an Alpha-Refine checkpoint)"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", b"storage")):
            raise _Refused(f"unknown persistent record {str(pid)[:80]!r} (not a torch tensor storage)")
        want = 6 if self.legacy else 5
        if len(pid) != want:
            raise _Refused(f"malformed storage record {str(pid)[:80]!r}")
        stype, key, numel = pid[1], pid[2], pid[4]
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if not isinstance(stype, _StorageType):
            raise _Refused(f"storage record names {stype!r}, not a storage type")
        if not isinstance(key, str) or not re.fullmatch(r"[0-9A-Za-z_]{1,64}", key):
            raise _Refused(f"storage key {key!r} is not a plain name")
        if type(numel) is not int or not 0 <= numel < 1 << 40:
            raise _Refused(f"storage {key!r} has an invalid size {numel!r}")
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(key, stype.dtype, numel)
        elif st.dtype != stype.dtype or st.numel != numel:
            raise _Refused(f"storage {key!r} is described twice with different types or sizes")
        view = pid[5] if self.legacy else None
        if view is not None:
            if not (isinstance(view, tuple) and len(view) == 3):
                raise _Refused(f"malformed storage view {view!r}")
            vkey, off, n = view
            if not (
                isinstance(vkey, str)
                and type(off) is int
                and type(n) is int
                and 0 <= off
                and 0 <= n
                and off + n <= numel
            ):
                raise _Refused(f"storage view {view!r} lies outside storage {key!r}")
            return _Storage(vkey, st.dtype, n, root=st, offset=off)
        return st


class _DataOnlyUnpickler(pickle.Unpickler):
    """For the legacy container's small records (magic, protocol, system info, key list)."""

    def find_class(self, module: str, name: str) -> Any:
        raise _Refused(f"refusing to load global '{module}.{name}' in a checkpoint header")

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("unexpected persistent record in a checkpoint header")


# ------------------------------------------------------------------------------------ containers
def _bytes_to_flat(raw: bytes, dtype: torch.dtype, numel: int, key: str) -> torch.Tensor:
    esize = torch.empty((), dtype=dtype).element_size()
    if len(raw) != numel * esize:
        raise WeightsError(f"storage {key!r} holds {len(raw)} bytes, expected {numel} x {esize}")
    if numel == 0:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype)


def _is_torchscript_name(name: str) -> bool:
    parts = name.split("/")
    return parts[-1] == "constants.pkl" or "code" in parts[:-1] or parts[0] == "code"


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise WeightsError(f"{path} is a zip archive with duplicate entry names; not a torch checkpoint")
        if any(_is_torchscript_name(n) for n in names):
            raise WeightsError(
                f"{path} is a TorchScript archive (torch.jit.save: it holds constants.pkl or code/). Loading "
                "TorchScript runs code from the file, so it is refused; save the weights with "
                "torch.save(model.state_dict(), path) or as safetensors instead"
            )
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise WeightsError(
                f"{path} is a zip archive but not a torch checkpoint "
                f"({'no' if not pkls else len(pkls)} '<name>/data.pkl' entries; exactly one is needed)"
            )
        prefix = pkls[0][: -len("data.pkl")]
        by_name = {i.filename: i for i in infos}
        for i in infos:
            if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise WeightsError(f"{path}: entry {i.filename!r} uses an unsupported compression")
            if i.file_size > MAX_WEIGHTS_BYTES:
                raise WeightsError(f"{path}: entry {i.filename!r} claims {i.file_size:,} bytes, over the limit")
        order = by_name.get(prefix + "byteorder")
        if order is not None and (order.file_size > 16 or zf.read(order).strip() not in (b"little", b"")):
            raise WeightsError(f"{path} was saved on a big-endian machine; re-save it on a little-endian one")
        pkl = by_name[pkls[0]]
        if pkl.file_size > MAX_PICKLE_BYTES:
            raise WeightsError(f"{path}: data.pkl is {pkl.file_size:,} bytes, over the {MAX_PICKLE_BYTES:,} limit")
        storages: Dict[str, _Storage] = {}
        obj = RestrictedUnpickler(io.BytesIO(zf.read(pkl)), storages=storages).load()
        total = 0
        for key, st in storages.items():
            info = by_name.get(f"{prefix}data/{key}")
            if info is None:
                raise WeightsError(f"{path}: tensor data {prefix}data/{key} is missing from the archive")
            esize = torch.empty((), dtype=st.dtype).element_size()
            if info.file_size != st.numel * esize:
                raise WeightsError(f"{path}: {info.filename} holds {info.file_size} bytes, expected {st.numel * esize}")
            total += info.file_size
            if total > MAX_WEIGHTS_BYTES:
                raise WeightsError(f"{path}: the tensors add up to more than the size limit")
            st.data = _bytes_to_flat(zf.read(info), st.dtype, st.numel, key)
    return obj


def _read_legacy(path: Path) -> Any:
    raw = read_limited(path, MAX_WEIGHTS_BYTES, "checkpoint", WeightsError)
    if len(raw) > 262 and raw[257:262] == b"ustar":
        raise WeightsError(
            f"{path} uses the tar format of torch < 0.4, which is not supported; re-save it with a newer torch"
        )
    if raw[:1] != b"\x80":
        raise WeightsError(f"{path} is neither a zip nor a legacy torch checkpoint (it does not start with a pickle)")
    f = io.BytesIO(raw)
    if _DataOnlyUnpickler(f).load() != LEGACY_MAGIC:
        raise WeightsError(f"{path} does not carry torch's checkpoint magic number; not a torch checkpoint")
    if _DataOnlyUnpickler(f).load() != LEGACY_PROTOCOL:
        raise WeightsError(f"{path} uses an unknown torch serialization protocol")
    _DataOnlyUnpickler(f).load()  # system info: endianness and type sizes
    storages: Dict[str, _Storage] = {}
    obj = RestrictedUnpickler(f, storages=storages, legacy=True).load()
    keys = _DataOnlyUnpickler(f).load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(storages):
        raise WeightsError(f"{path}: the storage list does not match the tensors in the pickle")
    for key in keys:
        st = storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise EOFError("file ends inside the tensor data")
        (n,) = struct.unpack("<q", head)
        if n != st.numel:
            raise WeightsError(f"{path}: storage {key!r} has {n} elements in the data, {st.numel} in the pickle")
        nbytes = n * torch.empty((), dtype=st.dtype).element_size()
        chunk = f.read(nbytes)
        if len(chunk) != nbytes:
            raise EOFError("file ends inside the tensor data")
        st.data = _bytes_to_flat(chunk, st.dtype, n, key)
    return obj


def read_torch_file(path: Union[str, Path]) -> Any:
    """The object in a torch checkpoint (zip or legacy), with tensors as :class:`PendingTensor`.

    Raises:
        WeightsError: missing, not a regular file, over the size limit, TorchScript, a refused
            global, or corrupt.
    """
    path = Path(path)
    try:
        check_regular_file(path, MAX_WEIGHTS_BYTES, "checkpoint", WeightsError)
    except FileNotFoundError as e:
        raise WeightsError(str(e)) from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        return _read_zip(path) if head == b"PK\x03\x04" else _read_legacy(path)
    except WeightsError:
        raise
    except _Refused as e:
        raise WeightsError(f"refused to load {path}: {e}") from None
    except (Exception, RecursionError) as e:  # truncated, not a torch file, hostile structure...
        raise WeightsError(
            f"could not read {path} as a torch checkpoint ({type(e).__name__}: {str(e)[:200]}); "
            "is the file complete? Re-download it and check its size."
        ) from None


def materialise(t: PendingTensor, budget: List[int]) -> torch.Tensor:
    """Build a tensor from its storage, bounds checked; ``budget[0]`` bytes may still be allocated."""
    flat = t.storage.flat()
    if t.dtype is not None and t.dtype != flat.dtype:
        if flat.dtype != torch.uint8:
            raise WeightsError(f"tensor of storage {t.storage.key!r}: dtype {t.dtype} over a typed storage")
        esize = torch.empty((), dtype=t.dtype).element_size()
        flat = flat[: flat.numel() - flat.numel() % esize].view(t.dtype)
    numel = math.prod(t.size)
    if numel:
        last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
        if last >= flat.numel():
            raise WeightsError(f"tensor of storage {t.storage.key!r} reaches past its data (corrupt or hostile file)")
    nbytes = numel * flat.element_size()
    if nbytes > budget[0]:
        raise WeightsError("the tensors of this checkpoint would need more memory than the file holds; refused")
    budget[0] -= nbytes
    if not numel:
        return torch.empty(t.size, dtype=flat.dtype)
    return flat.as_strided(t.size, t.stride, t.offset).clone()


# ------------------------------------------------------------------------------------ checkpoints
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
        WeightsError: the file is missing, corrupt, TorchScript, holds forbidden globals or no state dict.
    """
    path = Path(path)
    obj = read_torch_file(path)
    if isinstance(obj, dict) and "net" in obj:
        net = obj["net"]
        ctor = obj.get("constructor")
        ctor_info = {}
        if isinstance(ctor, InertRecord):
            ctor_info = {k: ctor.__dict__.get(k) for k in ("fun_name", "fun_module", "kwds") if k in ctor.__dict__}
        net_type = obj.get("net_type", "") if isinstance(obj.get("net_type", ""), str) else ""
        epoch = obj.get("epoch") if type(obj.get("epoch")) is int else None
    elif isinstance(obj, dict):
        net, ctor_info, net_type, epoch = obj, {}, "", None
    else:
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a checkpoint dict with a 'net' state dict")

    if not isinstance(net, dict) or not net:
        raise WeightsError(f"{path}: the 'net' entry is not a state dict")
    budget = [2 * path.stat().st_size + (64 << 20)]
    state: Dict[str, torch.Tensor] = {}
    for k, v in net.items():
        if not isinstance(k, str) or not isinstance(v, PendingTensor):
            raise WeightsError(f"{path}: state dict entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k[len("module.") :] if k.startswith("module.") else k] = materialise(v, budget)
    return OriginalCheckpoint(state, ctor_info, net_type, epoch)
