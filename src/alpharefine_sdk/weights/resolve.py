"""Turn a ``source`` (folder, file, original checkpoint, short name or Hub repo id) into a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple

from .._files import MAX_WEIGHTS_BYTES, check_regular_file
from ..config import ModelConfig
from ..errors import WeightsError
from ..nn.arnet import RefinerNet
from .io import CONFIG_NAME, WEIGHTS_NAME, convert_original, load_model_folder, looks_like_original

PACKAGE_MODELS = Path(__file__).resolve().parent.parent / "models"
# The packaged default: it ships only because it improved real trackers on held-out sequences
# (its model card has the table). A release that has no such model sets this to None.
DEFAULT_MODEL: Optional[str] = "mnv2-shared-v2"


def default_model_dir() -> Optional[Path]:
    """Folder of the model shipped inside the package as the default, if this release ships one."""
    if DEFAULT_MODEL is None:
        return None
    d = PACKAGE_MODELS / DEFAULT_MODEL
    return d if (d / WEIGHTS_NAME).is_file() else None


def list_models() -> List[str]:
    """Names that ``Refiner.from_pretrained(name)`` loads: the models shipped in the package (the
    default first), then the short names of published Hub models."""
    from .hub import KNOWN_MODELS

    shipped = sorted(p.name for p in PACKAGE_MODELS.iterdir() if (p / WEIGHTS_NAME).is_file())
    shipped.sort(key=lambda n: n != DEFAULT_MODEL)
    return shipped + sorted(n for n in KNOWN_MODELS if n not in shipped)


def source_card(source: Any = None) -> Optional[str]:
    """The model card (``README.md``) beside a local or packaged ``source``, if it has one: what
    ``convert`` and ``save_pretrained`` carry over so a packaged model keeps its card."""
    if source is None:
        d = default_model_dir()
    else:
        p = Path(str(source)).expanduser()
        d = p if p.is_dir() else p.parent if p.suffix in (".safetensors", ".json") and p.is_file() else None
        if d is None and str(source).replace("-", "_").isidentifier():
            d = PACKAGE_MODELS / str(source)
    readme = d / "README.md" if d is not None else None
    return readme.read_text() if readme is not None and readme.is_file() else None


def load_source(
    source: Any = None,
    *,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    local_files_only: bool = False,
    token: Optional[str] = None,
) -> Tuple[RefinerNet, ModelConfig]:
    """Resolve ``source`` in this order: ``None`` (the packaged default), a local folder in our
    format, a local ``model.safetensors`` (with ``config.json`` beside it) or ``config.json``, an
    original ``*.pth.tar``, a model shipped in the package by name, a short model name, then a Hub repo id ``"org/name"``."""
    if source is None:
        d = default_model_dir()
        if d is None:
            raise WeightsError(
                "this release ships no default weights; pass a model folder, an original "
                "*.pth.tar checkpoint or a Hub repo id to from_pretrained"
            )
        return load_model_folder(d)
    path = Path(str(source)).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file() and not (path / WEIGHTS_NAME).is_file():
            raise WeightsError(f"{path} is a folder without {WEIGHTS_NAME} and {CONFIG_NAME}; is it a model folder?")
        return load_model_folder(path)
    if path.exists() and not path.is_file():
        check_regular_file(path, MAX_WEIGHTS_BYTES, "weights", WeightsError)  # a pipe or device: refused
    if path.is_file():
        if path.name == CONFIG_NAME:
            return load_model_folder(path.parent)
        if path.suffix == ".safetensors":
            return load_model_folder(path, path.parent / CONFIG_NAME)
        if looks_like_original(path):
            return convert_original(path)
        raise WeightsError(f"{path}: unknown weight file type (expected a model folder, .safetensors or .pth.tar)")
    text = str(source)
    if (
        isinstance(source, Path)
        or text.startswith((".", "/", "~", "\\"))
        or text.count("/") > 1
        or path.suffix in (".tar", ".pth", ".pt", ".ckpt", ".safetensors", ".json")
    ):
        raise WeightsError(f"weights not found: {path} does not exist (check the path)")
    packaged = PACKAGE_MODELS / str(source)
    if str(source).replace("-", "_").isidentifier() and (packaged / WEIGHTS_NAME).is_file():
        return load_model_folder(packaged)
    from .hub import load_from_hub, resolve_name

    repo_id, pinned = resolve_name(str(source))
    if repo_id is None:
        raise WeightsError(
            f"{source!r} is neither an existing path nor a Hub repo id ('org/name') nor a known model name"
        )
    return load_from_hub(
        repo_id,
        revision=revision or pinned,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
    )
