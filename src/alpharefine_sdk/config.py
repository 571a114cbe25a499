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
        if not isinstance(version, int) or version < 1:
            raise WeightsError("config.json has no valid 'format_version'; is this an alpharefine-sdk model folder?")
        if version > FORMAT_VERSION:
            raise WeightsError(
                f"config.json has format_version {version}, newer than this library reads ({FORMAT_VERSION}); "
                "upgrade alpharefine-sdk"
            )
        if not isinstance(d.get("architecture"), str):
            raise WeightsError("config.json has no 'architecture' name")
        pre = dict(d.get("preprocessing") or {})
        try:
            for k in ("mean", "std"):
                if k in pre:
                    pre[k] = tuple(float(v) for v in pre[k])
            prep = Preprocessing(**pre)
        except TypeError as e:
            raise WeightsError(f"config.json: bad 'preprocessing' block ({e})") from None
        return cls(
            architecture=d["architecture"],
            preprocessing=prep,
            format_version=version,
            license=str(d.get("license", "unknown")),
            source=str(d.get("source", "")),
            extra=dict(d.get("extra") or {}),
        )

    def save(self, path: Union[str, Path]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ModelConfig":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise WeightsError(f"missing config.json: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WeightsError(f"{path} is not valid JSON ({e})") from None
        return cls.from_dict(d)
