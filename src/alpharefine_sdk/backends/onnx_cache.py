"""The ONNX export of a network, made once per weights and kept in the Hugging Face cache folder.

``HF_HOME/assets/alpharefine-sdk/onnx-v<format>-opset<opset>-g<graph revision>/graphs/<sha256>/``
(``huggingface_hub``'s assets cache, so ``HF_HOME`` and ``HF_ASSETS_CACHE`` move it) holds the
template, box and box + mask graphs of one set of weights, written by :func:`~.onnx_export.export_graphs` and checked
against the network once, when written. Later processes load it without exporting again. A new
folder appears atomically (exported next to it, then renamed), so concurrent processes never see
half an export. Where the cache cannot be written the export goes to a temporary folder instead,
with a warning.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

from ..config import ModelConfig
from .onnx_export import (
    DEFAULT_OPSET,
    FORMAT_VERSION,
    GRAPH_REVISION,
    export_graphs,
    read_manifest,
    verify_export,
    weights_fingerprint,
)

log = logging.getLogger(__name__)
LIBRARY = "alpharefine-sdk"
NAMESPACE = f"onnx-v{FORMAT_VERSION}-opset{DEFAULT_OPSET}-g{GRAPH_REVISION}"
MAX_ENTRIES = 8  # exports kept; the least recently used beyond that are removed


def cache_root() -> Path:
    """The folder holding one sub-folder per exported set of weights (created if missing)."""
    from huggingface_hub import cached_assets_path, constants

    assets = constants.HF_ASSETS_CACHE  # read now: HF_HOME / HF_ASSETS_CACHE as set for this process
    return Path(cached_assets_path(library_name=LIBRARY, namespace=NAMESPACE, subfolder="graphs", assets_dir=assets))


def _usable(folder: Path, config: ModelConfig, sha256: str) -> bool:
    if not folder.is_dir():
        return False
    try:
        m = read_manifest(folder, config, weights_sha256=sha256)
    except (OSError, ValueError) as e:
        log.warning("ignoring the cached ONNX export in %s (%s); exporting again", folder, e)
        return False
    return "mask" in m["graphs"]


def cached_export(net: Any, config: ModelConfig, *, sha256: Optional[str] = None) -> Path:
    """The export folder of ``net``'s weights: from the cache, or exported (and verified) now."""
    sha256 = sha256 or weights_fingerprint(net)
    try:
        root = cache_root()
        final = root / sha256
        if _usable(final, config, sha256):
            os.utime(final)  # recently used: kept by the pruning below
            return final
        work = Path(tempfile.mkdtemp(prefix=f".{sha256[:16]}-", dir=root))
    except (OSError, ValueError) as e:  # huggingface_hub raises ValueError for a file in the way
        warnings.warn(
            f"the Hugging Face cache folder is not writable ({e}); exporting the ONNX graphs to a temporary "
            "folder for this process only (set HF_HOME to a writable folder to keep them)",
            RuntimeWarning,
            stacklevel=4,
        )
        return _temporary_export(net, config)
    try:
        out = _export_verified(net, config, work / "onnx")
        if final.exists() and not _usable(final, config, sha256):
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(out, final)  # atomic; fails when another process got there first
        except OSError:
            if not _usable(final, config, sha256):
                raise
        log.info("exported the ONNX graphs of weights %s to %s", sha256[:12], final)
        _prune(root, keep=final)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_verified(net: Any, config: ModelConfig, out: Path) -> Path:
    export_graphs(net, config, out, with_mask=True)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return out
    verify_export(out, net, config)
    return out


def _temporary_export(net: Any, config: ModelConfig) -> Path:
    import atexit

    tmp = Path(tempfile.mkdtemp(prefix="alpharefine-onnx-"))
    atexit.register(shutil.rmtree, tmp, True)
    return _export_verified(net, config, tmp / "onnx")


def _prune(root: Path, keep: Path) -> None:
    """Keep the :data:`MAX_ENTRIES` most recently used exports (disk use stays bounded)."""
    import time

    for p in root.glob(".*"):  # work folders of processes that died mid-export
        if p.is_dir() and time.time() - p.stat().st_mtime > 3600:
            shutil.rmtree(p, ignore_errors=True)
    entries = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[MAX_ENTRIES - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
