"""One rule for every folder this library writes (model folders, ONNX exports): never overwrite
a folder that holds someone else's files, and replace our own only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Collection, List


def check_output_dir(folder: Path, ours: Collection[str], overwrite: bool, overwrite_hint: str) -> List[str]:
    """Raise ``FileExistsError`` unless ``folder`` is absent, empty, or (with ``overwrite``) holds
    only files named in ``ours``; return the names present. ``overwrite_hint`` says how to
    overwrite (e.g. ``"pass overwrite=True to replace an earlier save"``)."""
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder; choose a folder")
    if not folder.is_dir():
        return []
    present = sorted(p.name for p in folder.iterdir())
    foreign = [n for n in present if n not in ours]
    if foreign or (present and not overwrite):
        raise FileExistsError(
            f"{folder} is not empty ({', '.join(present[:5])}); "
            + ("it holds files that are not ours, choose an empty folder" if foreign else overwrite_hint)
        )
    return present
