"""Our weight format (``model.safetensors`` + ``config.json``, never pickle) and local sources."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch

from .._files import MAX_WEIGHTS_BYTES, check_regular_file
from ..config import ModelConfig
from ..errors import WeightsError
from ..nn.arnet import RefinerNet
from ..nn.registry import build_net
from ..nn.resnet import is_unused_resnet_key
from .state import load_strict

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PathLike = Union[str, Path]


# safetensors dtypes a weight file may hold (the model's tensors are float; batch-norm counters int64).
SAFETENSORS_DTYPES = ("F64", "F32", "F16", "BF16", "I64")
MAX_HEADER_BYTES = 100 << 20


def check_safetensors_header(path: PathLike, size: int) -> None:
    """Check the JSON header of a safetensors file before the library maps it: a sane length, an
    object of tensor entries with supported dtypes and offsets inside the file."""
    import json

    path = Path(path)
    bad = f"{path} is not a readable safetensors file"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise WeightsError(f"{bad} (shorter than its 8-byte header length); it may be truncated")
            n = int.from_bytes(head, "little")
            if n > min(MAX_HEADER_BYTES, size - 8):
                raise WeightsError(f"{bad} (header length {n} does not fit the {size}-byte file); it may be truncated")
            header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        if isinstance(e, WeightsError):
            raise
        raise WeightsError(f"{bad} (corrupt header: {type(e).__name__}); download or convert it again") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{bad} (its header is not a JSON object)")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict):
            raise WeightsError(f"{bad} (header entry {name!r} is not an object)")
        dtype = entry.get("dtype")
        if dtype not in SAFETENSORS_DTYPES:
            raise WeightsError(
                f"{path}: tensor {name!r} has dtype {dtype!r}; weights must be one of {', '.join(SAFETENSORS_DTYPES)}"
            )
        offs = entry.get("data_offsets")
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(type(o) is int for o in offs)
            and 0 <= offs[0] <= offs[1] <= size - 8 - n
        ):
            raise WeightsError(f"{bad} (tensor {name!r} has data offsets {offs!r} outside the file)")


def read_safetensors(path: PathLike) -> Dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, special, oversized, truncated or corrupt file gives a
    :class:`WeightsError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        size = check_regular_file(path, MAX_WEIGHTS_BYTES, "weights file", WeightsError)
    except FileNotFoundError:
        raise WeightsError(f"missing weights file: {path}") from None
    check_safetensors_header(path, size)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError, NotImplementedError) as e:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({e}); it may be truncated or corrupt: "
            "download or convert it again"
        ) from None


def load_model_folder(folder: PathLike, config_path: Optional[PathLike] = None) -> Tuple[RefinerNet, ModelConfig]:
    """Load ``folder/config.json`` + ``folder/model.safetensors`` (or an explicit pair) strictly."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME if folder.is_dir() else folder
    config = ModelConfig.load(Path(config_path) if config_path else weights.parent / CONFIG_NAME)
    try:
        net = build_net(config.architecture)
    except ValueError as e:
        raise WeightsError(f"{weights.parent / CONFIG_NAME}: {e}") from None
    load_strict(net, read_safetensors(weights), what=f"weights in {weights}")
    return net.eval(), config


def convert_original(path: PathLike) -> Tuple[RefinerNet, ModelConfig]:
    """Load an original ``*.pth.tar`` (AR34 c+m) into our network, in memory."""
    from .legacy import load_original_checkpoint

    ckpt = load_original_checkpoint(path)
    fun = ckpt.constructor.get("fun_name")
    if fun and fun != "SEcm_resnet34":
        raise WeightsError(f"{path} was built by {fun!r}; only the AR34 c+m model (SEcm_resnet34) is supported")
    kwds = ckpt.constructor.get("kwds") or {}
    if isinstance(kwds, dict) and kwds.get("pool_size", 8) != 8:
        raise WeightsError(f"{path}: pool_size {kwds.get('pool_size')} is not the released 8")
    net = build_net("ar34_cm")
    unused = [k for k in ckpt.state_dict if is_unused_resnet_key(k)]
    load_strict(net, ckpt.state_dict, ignore=unused, what=f"checkpoint {Path(path).name}")
    config = ModelConfig(
        architecture="ar34_cm",
        license="see the original Alpha-Refine release",
        source=f"converted from {Path(path).name}",
    )
    return net.eval(), config


def save_model_folder(net: RefinerNet, config: ModelConfig, folder: PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model.safetensors`` and ``config.json`` to ``folder``.

    Refuses a non-empty folder; ``overwrite=True`` replaces an earlier save but still refuses a
    folder that holds anything besides our three files.
    """
    from safetensors.torch import save_file

    from .._outdir import check_output_dir

    folder = Path(folder)
    check_output_dir(
        folder, {WEIGHTS_NAME, CONFIG_NAME, "README.md"}, overwrite, "pass overwrite=True to replace an earlier save"
    )
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    config.save(folder / CONFIG_NAME)
    return folder


def looks_like_original(path: Path) -> bool:
    """True for a torch pickle (legacy magic or zip) rather than our format."""
    if path.suffix in (".tar", ".pth", ".pt", ".ckpt"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head[:2] == b"\x80\x02" or head == b"PK\x03\x04"
