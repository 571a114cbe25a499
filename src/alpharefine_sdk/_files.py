"""Reading user-named files safely: regular files only, never more than a size limit.

A FIFO would block a plain ``read`` forever and ``/dev/zero`` would fill memory; both (and
folders, sockets, devices) are refused before anything is opened for reading.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Type, Union

# The one place for the size limits (docs/security.md quotes them).
MAX_WEIGHTS_BYTES = 4 << 30  # 4 GiB: the largest released checkpoint is ~0.2 GB
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config.json is a few hundred bytes
MAX_TEXT_BYTES = 256 << 20  # 256 MiB: ground-truth and box files
MAX_IMAGE_BYTES = 1 << 30  # 1 GiB: one frame or mask file


def _size(n: int) -> str:
    return f"{n / (1 << 30):.0f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MiB"


def file_sha256(path: Union[str, Path]) -> str:
    """sha256 hex digest of a file's bytes, read in 4 MiB chunks (memory stays bounded)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def check_regular_file(path: Union[str, Path], limit: int, what: str, error: Type[Exception] = ValueError) -> int:
    """Return the size of ``path`` after checking that it is a regular file of at most ``limit`` bytes.

    Raises ``error`` (``FileNotFoundError`` when the path does not exist) naming ``what``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path} does not exist (check the path)") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is not a regular file (a pipe, socket or device); pass a file on disk")
    if st.st_size > limit:
        raise error(f"{what} {path} is {st.st_size:,} bytes, over the {_size(limit)} limit; is it the right file?")
    return int(st.st_size)


def read_limited(path: Union[str, Path], limit: int, what: str, error: Type[Exception] = ValueError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (checked before and while reading)."""
    check_regular_file(path, limit, what, error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped for a pipe after the check
            raise error(f"{what} {path} is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise error(f"{what} {path} is over the {_size(limit)} limit; is it the right file?")
    return data
