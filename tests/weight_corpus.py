"""Builders for hostile (and benign) weight files, made inside the tests: torch zip and legacy
checkpoints crafted byte by byte, TorchScript archives, zip tricks and safetensors header tricks.
Every payload, if it ever ran, would create ``marker``."""

from __future__ import annotations

import collections
import copyreg
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import torch

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

TS_MODULE = '''
from typing import Tuple
import torch
from torch import Tensor


class Writer(torch.nn.Module):
    """TorchScript: __setstate__ writes a file when the archive is loaded (torch.jit.load)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.w = torch.zeros(2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, Tensor, bool]:
        return (self.marker, self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, Tensor, bool]) -> None:
        self.marker = state[0]
        self.training = state[2]
        f = torch.from_file(state[0], True, 4, dtype=torch.uint8)
        f.copy_(torch.tensor([111, 119, 110, 10], dtype=torch.uint8))
        self.w = state[1] + f[:2].float() * 0.0
'''


class Evil:
    """Pickles as ``os.system("touch marker")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Storage:
    """Pickles (through :class:`Crafter`) as a torch storage record."""

    def __init__(self, key: str, numel: int, stype: Any = torch.FloatStorage, view: Any = None) -> None:
        self.key, self.numel, self.stype, self.view = key, numel, stype, view


class Tensor:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, storage: Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))


class Crafter(pickle.Pickler):
    def __init__(self, f: Any, legacy: bool) -> None:
        super().__init__(f, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj: Any) -> Optional[tuple]:
        if isinstance(obj, Storage):
            rec = ("storage", obj.stype, obj.key, "cpu", obj.numel)
            return rec + (obj.view,) if self.legacy else rec
        return None


def craft_pickle(obj: Any, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    Crafter(buf, legacy).dump(obj)
    return buf.getvalue()


def craft_zip(
    path: Path,
    obj: Any,
    data: Dict[str, bytes],
    *,
    prefix: str = "archive",
    extra: Dict[str, bytes] = None,
    pkl: Optional[bytes] = None,
    compress: int = zipfile.ZIP_STORED,
    byteorder: bytes = b"little",
) -> Path:
    """A torch zip checkpoint whose ``data.pkl`` is ``obj`` (or raw ``pkl``) and storages ``data``."""
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        z.writestr(f"{prefix}/data.pkl", pkl if pkl is not None else craft_pickle(obj))
        z.writestr(f"{prefix}/byteorder", byteorder)
        for key, raw in data.items():
            z.writestr(f"{prefix}/data/{key}", raw)
        z.writestr(f"{prefix}/version", b"3\n")
        for name, raw in (extra or {}).items():
            z.writestr(name, raw)
    return path


def craft_legacy(
    path: Path,
    obj: Any,
    data: Dict[str, bytes],
    *,
    keys: Optional[list] = None,
    numels: Optional[Dict[str, int]] = None,
    pkl: Optional[bytes] = None,
) -> Path:
    """A legacy (torch < 1.6) checkpoint: magic, protocol, sys info, pickle, keys, raw storages."""
    out = io.BytesIO()
    for v in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(v, out, protocol=2)
    out.write(pkl if pkl is not None else craft_pickle(obj, legacy=True))
    keys = list(data) if keys is None else keys
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        raw = data.get(key, b"")
        n = (numels or {}).get(key, len(raw) // 4)
        out.write(struct.pack("<q", n) + raw)
    path.write_bytes(out.getvalue())
    return path


def floats(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def torchscript_archive(folder: Path, marker: Path, name: str = "ts.pth.tar") -> Path:
    """A real TorchScript archive (torch.jit.save) whose loading writes ``marker``."""
    src = folder / "ts_payload_mod.py"
    src.write_text(TS_MODULE)
    sys.path.insert(0, str(folder))
    try:
        import importlib

        mod = importlib.import_module("ts_payload_mod")
        path = folder / name
        torch.jit.save(torch.jit.script(mod.Writer(str(marker))), str(path))
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("ts_payload_mod", None)
    return path


def ext_pickle(marker: Path) -> bytes:
    """A pickle that reaches ``os.system`` through the copyreg extension registry (EXT2 opcode)."""
    copyreg.add_extension("os", "system", 0x7A51)
    try:
        return pickle.dumps(Evil(marker), protocol=2)
    finally:
        copyreg.remove_extension("os", "system", 0x7A51)


def inst_pickle(marker: Path) -> bytes:
    """Protocol 0 ``INST`` opcode naming ``os.system``."""
    return f"(S'touch {marker}'\nios\nsystem\n.".encode()


def safetensors_bytes(header: Any, payload: bytes = b"", *, length: Optional[int] = None) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + payload
