"""Training configuration (a JSON file). Relative paths are relative to the working directory."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..config import Preprocessing
from .augment import DEFAULT_DEGRADE_KINDS, check_degrade
from .sources import DEFAULT_MAX_GAP

SOURCE_KINDS = ("video", "still", "paste")
SOURCE_FORMATS = ("video", "yolo", "coco")


@dataclass
class SourceConfig:
    """One weighted source.

    ``kind``: "video" (pairs from one video), "still" (two augmentations of one image) or "paste"
    (an object with its mask pasted onto other images). ``format``: "video" (any layout
    ``alpharefine_sdk.eval.datasets`` reads: OTB, LaSOT, GOT-10k, VOT, DAVIS), "yolo" (YOLO /
    YOLO-seg: ``root`` holds ``images/`` and ``labels/``) or "coco" (``annotations`` json +
    ``root`` with the images).
    """

    kind: str
    root: str
    weight: float = 1.0
    format: str = "video"
    annotations: Optional[str] = None
    include: Optional[List[str]] = None
    exclude: List[str] = field(default_factory=list)
    limit: Optional[int] = None  # at most this many images / frames per video (tiny configs)
    max_gap: int = DEFAULT_MAX_GAP  # kind "video" only: template and search at most this many source frames apart

    def check(self, i: int) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"sources[{i}].kind must be one of {SOURCE_KINDS}; got {self.kind!r}")
        if self.format not in SOURCE_FORMATS:
            raise ValueError(f"sources[{i}].format must be one of {SOURCE_FORMATS}; got {self.format!r}")
        if self.kind == "video" and self.format != "video":
            raise ValueError(f"sources[{i}]: kind 'video' needs format 'video'")
        if self.format == "coco" and not self.annotations:
            raise ValueError(f"sources[{i}]: format 'coco' needs 'annotations' (the instances json)")
        if self.weight < 0:
            raise ValueError(f"sources[{i}].weight must be >= 0")
        if self.max_gap < 1:
            raise ValueError(f"sources[{i}].max_gap must be >= 1 (source frames); got {self.max_gap}")
        if self.max_gap != DEFAULT_MAX_GAP and self.kind != "video":
            raise ValueError(f"sources[{i}].max_gap applies to kind 'video' only (pairs from one video); remove it")


@dataclass
class ValidationConfig:
    """Whole held-out sequences (never split by frame), scored every ``every_samples``."""

    root: Optional[str] = None
    sequences: List[str] = field(default_factory=list)
    samples: int = 256
    every_samples: int = 20000
    seed: int = 12345


TRAINABLE = ("all", "iou_head")  # what a run may change: everything not frozen, or only the IoU head


def check_scalar_types(cfg: Any, where: str = "") -> None:
    """Each number or switch of a config dataclass has its default's type (a JSON int may stand for a
    float), or a ValueError names the key: never a TypeError from a comparison later."""
    for f in fields(cfg):
        v, d = getattr(cfg, f.name), f.default
        if isinstance(d, bool):
            if not isinstance(v, bool):
                raise ValueError(f"{where}{f.name} must be true or false; got {v!r}")
        elif isinstance(d, int):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{where}{f.name} must be an integer; got {v!r}")
        elif isinstance(d, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}{f.name} must be a finite number; got {v!r}")


@dataclass
class TrainConfig:
    name: str = "mnv2-refiner"
    architecture: str = "mnv2_cm"
    out_dir: str = "../runs/mnv2-refiner"
    seed: int = 0
    sources: List[SourceConfig] = field(default_factory=list)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    backbone_init: Optional[str] = None  # ImageNet MobileNetV2 safetensors (torchvision keys); never shipped
    init_from: Optional[str] = None  # a model folder (or name) whose weights start this run; new heads start fresh
    freeze_blocks: int = 7  # backbone blocks (features[:n]) kept frozen
    backbone_bn: str = "eval"  # "eval": backbone BN keeps its statistics; "train": re-estimated
    freeze_bn: bool = False  # every BN in eval mode (exact DDP equivalence, tiny batches)
    search_factor: float = 2.0  # crops: search_factor x the box, resized to input_size (saved in config.json)
    input_size: int = 256
    batch_size: int = 16  # global batch (split over DDP processes)
    total_samples: int = 200000
    lr: float = 1e-3
    lr_halve_every: int = 60000  # samples
    mask_weight: float = 1000.0 / 256**2  # = the paper's lambda 1000 with corners in crop units (see docs)
    mse_weight: float = 1.0  # MSE of corners in crop units
    l1_weight: float = 0.0  # L1 of corners in crop units
    giou_weight: float = 0.0  # 1 - GIoU of the refined box
    iou_weight: float = 1.0  # BCE of the IoU head's estimates (architectures with an IoU head)
    rank_weight: float = 0.0  # cost-weighted loss on which box (refined or input) the IoU head ranks higher
    trainable: str = "all"  # "all" | "iou_head": only the IoU head learns (boxes and masks stay as they are)
    precision: str = "bf16"  # "fp32" | "bf16" (CPU or GPU) | "fp16" (GPU)
    channels_last: bool = True
    threads: int = 2
    max_side: int = 480  # frames are stored at most this large
    jitter_large_share: float = 0.25
    jitter_small_share: float = 0.15
    jitter_exact_share: float = 0.0  # inputs within ~2% of the truth: keeping a good box is learned
    degrade_p: float = 0.0  # share of crops given a camera-quality change (low resolution, blur, noise, colour)
    degrade_kinds: List[str] = field(default_factory=lambda: list(DEFAULT_DEGRADE_KINDS))  # picked from
    checkpoint_every_samples: int = 5000
    log_every_steps: int = 25
    prefetch_batches: int = 6
    num_workers: int = 0  # 0: one background thread; n: n sampler processes (GPU machines)
    device: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError("a training config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}; known: {sorted(known)}")
        d = dict(d)
        try:
            d["sources"] = [SourceConfig(**s) for s in d.get("sources", [])]
            d["validation"] = ValidationConfig(**(d.get("validation") or {}))
        except TypeError as e:
            raise ValueError(f"bad 'sources' or 'validation' entry in the training config: {e}") from None
        cfg = cls(**d)
        cfg.check()
        return cfg

    @classmethod
    def load(cls, path: Union[str, Path]) -> "TrainConfig":
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"training config not found: {p}")
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except json.JSONDecodeError as e:
            raise ValueError(f"{p} is not valid JSON ({e})") from None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def preprocessing(self) -> Preprocessing:
        """The crops this run trains on, as the exported ``config.json`` will state them."""
        return Preprocessing(search_factor=self.search_factor, input_size=self.input_size)

    def check(self) -> None:
        check_scalar_types(self)
        check_scalar_types(self.validation, "validation.")
        for i, src in enumerate(self.sources):
            check_scalar_types(src, f"sources[{i}].")
        if not self.sources:
            raise ValueError("the training config lists no 'sources'")
        for i, s in enumerate(self.sources):
            s.check(i)
        self.preprocessing()  # search_factor and input_size: checked where the model config checks them
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16'; got {self.precision!r}")
        if self.backbone_bn not in ("eval", "train"):
            raise ValueError(f"backbone_bn must be 'eval' or 'train'; got {self.backbone_bn!r}")
        for k in ("batch_size", "total_samples", "lr_halve_every", "checkpoint_every_samples", "threads"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1; got {getattr(self, k)}")
        shares = (self.jitter_large_share, self.jitter_small_share, self.jitter_exact_share)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(
                "jitter_large_share, jitter_small_share and jitter_exact_share must be >= 0 with a sum <= 1"
            )
        check_degrade(self.degrade_p, self.degrade_kinds)
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {list(TRAINABLE)}; got {self.trainable!r}")
        for k in ("mask_weight", "mse_weight", "l1_weight", "giou_weight", "iou_weight", "rank_weight"):
            if not getattr(self, k) >= 0:
                raise ValueError(f"{k} must be >= 0; got {getattr(self, k)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0; got {self.num_workers}")

    def loss_weights(self):
        from .loss import LossWeights

        return LossWeights(
            self.mse_weight, self.l1_weight, self.giou_weight, self.mask_weight, self.iou_weight, self.rank_weight
        )
