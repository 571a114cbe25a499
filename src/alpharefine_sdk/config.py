"""Model configuration: which architecture, and the preprocessing contract its weights expect."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from .errors import WeightsError

FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# Valid ranges of the preprocessing values (inclusive); one place, quoted in error messages.
SEARCH_FACTOR_RANGE = (1.0, 8.0)
INPUT_SIZE_RANGE = (64, 512)
MEAN_RANGE = (0.0, 1.0)
STD_RANGE = (1e-3, 10.0)
STRIDE = 16
TEMPLATE_CELLS = 8
MAX_NESTING = 32


def _check_number(name: str, v: Any, rng: Tuple[float, float]) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not rng[0] <= float(v) <= rng[1]:
        raise ValueError(f"{name} must be a number in [{rng[0]:g}, {rng[1]:g}]; got {v!r}")


def _check_int(name: str, v: Any, rng: Tuple[int, int]) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not rng[0] <= v <= rng[1]:
        raise ValueError(f"{name} must be an integer in [{rng[0]}, {rng[1]}]; got {v!r}")


def _depth(v: Any, limit: int) -> int:
    """Nesting depth of a JSON value, stopping once it passes ``limit``."""
    if limit < 0 or not isinstance(v, (dict, list)):
        return 0
    items = v.values() if isinstance(v, dict) else v
    return 1 + max((_depth(x, limit - 1) for x in items), default=0)


@dataclass(frozen=True)
class Preprocessing:
    """How crops are made: ``search_factor`` x the box, resized to ``input_size``, ImageNet-normalised RGB."""

    search_factor: float = 2.0
    input_size: int = 256
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    stride: int = 16
    template_cells: int = 8
    color: str = "RGB"

    def __post_init__(self) -> None:
        _check_number("search_factor", self.search_factor, SEARCH_FACTOR_RANGE)
        _check_int("input_size", self.input_size, INPUT_SIZE_RANGE)
        if self.input_size % STRIDE:
            raise ValueError(f"input_size must be a multiple of {STRIDE}; got {self.input_size}")
        for name, rng in (("mean", MEAN_RANGE), ("std", STD_RANGE)):
            v = getattr(self, name)
            if not isinstance(v, (tuple, list)) or len(v) != 3:
                raise ValueError(f"{name} must be 3 numbers (R, G, B); got {v!r}")
            for x in v:
                _check_number(name, x, rng)
            object.__setattr__(self, name, tuple(float(x) for x in v))
        # Fixed by the networks: refused when different instead of silently ignored.
        for name, want in (("stride", STRIDE), ("template_cells", TEMPLATE_CELLS), ("color", "RGB")):
            got = getattr(self, name)
            if type(got) is not type(want) or got != want:
                raise ValueError(f"{name} must be {want!r} (fixed by the network architecture); got {got!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture name, preprocessing and provenance; saved as ``config.json`` beside the weights."""

    architecture: str = "ar34_cm"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    format_version: int = FORMAT_VERSION
    license: str = "unknown"
    source: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["library_name"] = "alpharefine-sdk"
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ModelConfig":
        if not isinstance(d, dict):
            raise WeightsError("config.json must hold a JSON object")
        version = d.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise WeightsError("config.json has no valid 'format_version'; is this an alpharefine-sdk model folder?")
        if version > FORMAT_VERSION:
            raise WeightsError(
                f"config.json has format_version {version}, newer than this library reads ({FORMAT_VERSION}); "
                "upgrade alpharefine-sdk"
            )
        if not isinstance(d.get("architecture"), str):
            raise WeightsError("config.json has no 'architecture' name")
        pre = d.get("preprocessing") or {}
        if not isinstance(pre, dict):
            raise WeightsError("config.json: 'preprocessing' must be a JSON object")
        try:
            prep = Preprocessing(**pre)
        except (TypeError, ValueError) as e:
            raise WeightsError(f"config.json: bad 'preprocessing' block ({e})") from None
        extra = d.get("extra") or {}
        if not isinstance(extra, dict):
            raise WeightsError("config.json: 'extra' must be a JSON object")
        for key in ("license", "source"):
            if key in d and not isinstance(d[key], str):
                raise WeightsError(f"config.json: '{key}' must be a string; got {type(d[key]).__name__}")
        return cls(
            architecture=d["architecture"],
            preprocessing=prep,
            format_version=version,
            license=str(d.get("license", "unknown")),
            source=str(d.get("source", "")),
            extra=dict(extra),
        )

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ModelConfig":
        """Read ``config.json``: a regular file of at most 1 MiB holding a JSON object."""
        from ._files import MAX_CONFIG_BYTES, read_limited

        try:
            raw = read_limited(path, MAX_CONFIG_BYTES, "config.json", WeightsError)
        except FileNotFoundError:
            raise WeightsError(f"missing config.json: {path}") from None
        try:
            d = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WeightsError(f"{path} is not valid JSON ({e})") from None
        except RecursionError:
            d = None
        if d is None or _depth(d, MAX_NESTING) > MAX_NESTING:
            raise WeightsError(f"{path} nests JSON deeper than {MAX_NESTING} levels; is it a config.json?")
        try:
            return cls.from_dict(d)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}".replace(f"{path}: config.json: ", f"{path}: ")) from None
