"""Training sources decoded once into memory: still images with instances (COCO json, YOLO /
YOLO-seg labels) and videos with boxes or masks (the layouts ``alpharefine_sdk.eval.datasets``
reads).

Every source yields *items*: a still image with its instances, or a video with per-frame boxes
(and masks). Frames are stored RGB uint8 (optionally downscaled so the long side is at most
``max_side``; boxes and masks are scaled with them) so sampling never decodes a JPEG.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .._optional import require
from ..boxes import mask_to_box as mask_box  # the one mask-to-box (sampler imports it from here)

#: Template and search frames of a video pair are at most this many source frames apart unless a
#: source's ``max_gap`` says otherwise.
DEFAULT_MAX_GAP = 50

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Instance:
    """One object in a still image: tight box ``(x, y, w, h)`` and, when known, a full-size 0/255 mask."""

    box: np.ndarray
    mask: Optional[np.ndarray] = None


@dataclass
class StillImage:
    name: str
    image: np.ndarray  # H x W x 3 RGB uint8
    instances: List[Instance]


@dataclass
class Video:
    """Frames (RGB uint8), ``gt [N,4]`` xywh (NaN when absent), optional 0/255 masks, ``step`` (the
    temporal subsampling: source frames per stored frame, from ``manifest.json``) and ``max_gap``, the
    largest index distance a pair may span (see :meth:`with_max_gap`)."""

    name: str
    frames: List[np.ndarray]
    gt: np.ndarray
    masks: Optional[List[np.ndarray]] = None
    max_gap: int = DEFAULT_MAX_GAP
    visible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    step: int = 1

    def __post_init__(self) -> None:
        ok = np.isfinite(self.gt).all(axis=1) & (self.gt[:, 2] >= 2) & (self.gt[:, 3] >= 2)
        self.visible = np.flatnonzero(ok)

    def with_max_gap(self, source_frames: int) -> "Video":
        """This video (frames shared, not copied) with pairs at most ``source_frames`` frames of the
        original video apart."""
        return replace(self, max_gap=max(1, math.ceil(source_frames / self.step)))


# ---------------------------------------------------------------------------------------- images
def _read_rgb(path: Path, max_side: int = 0) -> np.ndarray:
    cv2 = require("cv2")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return _downscale(img, max_side)[0]


def _downscale(img: np.ndarray, max_side: int, nearest: bool = False):
    cv2 = require("cv2")
    h, w = img.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return img, 1.0, 1.0
    s = max_side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    out = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)
    return out, nw / w, nh / h


def _polygon_mask(poly: np.ndarray, hw) -> np.ndarray:
    cv2 = require("cv2")
    m = np.zeros(hw, dtype=np.uint8)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32).reshape(-1, 1, 2)], 255)
    return m


def _keep(box: np.ndarray, min_size: float, min_area: float) -> bool:
    return box[2] >= min_size and box[3] >= min_size and box[2] * box[3] >= min_area


def read_yolo(
    root: str | Path,
    *,
    max_side: int = 0,
    min_size: float = 12,
    min_area: float = 400,
    limit: Optional[int] = None,
) -> List[StillImage]:
    """YOLO / YOLO-seg folder (``images/<split>/*.jpg`` with ``labels/<split>/*.txt``).

    A label line is ``class cx cy w h`` (box) or ``class x1 y1 x2 y2 ...`` (polygon, gives a mask);
    coordinates are normalised to [0, 1]. Instances smaller than ``min_size``/``min_area`` are dropped.
    """
    root = Path(root)
    images = sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"no images under {root / 'images'}; expected the YOLO layout images/<split>/*.jpg")
    out: List[StillImage] = []
    for img_path in images[:limit]:
        rel = img_path.relative_to(root / "images").with_suffix(".txt")
        label = root / "labels" / rel
        if not label.is_file():
            continue
        img = _read_rgb(img_path)
        H, W = img.shape[:2]
        insts = []
        for line in label.read_text().splitlines():
            vals = line.split()
            if len(vals) < 5:
                continue
            v = np.asarray(vals[1:], dtype=np.float64)
            if len(v) == 4:
                cx, cy, w, h = v * [W, H, W, H]
                insts.append(Instance(np.array([cx - w / 2, cy - h / 2, w, h])))
            elif len(v) >= 6 and len(v) % 2 == 0:
                m = _polygon_mask(v.reshape(-1, 2) * [W, H], (H, W))
                b = mask_box(m)
                if b is not None:
                    insts.append(Instance(b, m))
        out.append(_finish_still(img_path.stem, img, insts, max_side, min_size, min_area))
    return [s for s in out if s.instances]


def read_coco_json(
    annotations: str | Path,
    images_dir: str | Path,
    *,
    max_side: int = 0,
    min_size: float = 12,
    min_area: float = 400,
    limit: Optional[int] = None,
) -> List[StillImage]:
    """COCO instances json: polygon segmentations give masks, RLE or missing ones box-only instances."""
    d = json.loads(Path(annotations).read_text())
    by_image: Dict[int, list] = {}
    for a in d.get("annotations", []):
        if not a.get("iscrowd", 0):
            by_image.setdefault(a["image_id"], []).append(a)
    out: List[StillImage] = []
    for info in d.get("images", [])[:limit]:
        anns = by_image.get(info["id"])
        if not anns:
            continue
        img = _read_rgb(Path(images_dir) / info["file_name"])
        H, W = img.shape[:2]
        insts = []
        for a in anns:
            seg = a.get("segmentation")
            if isinstance(seg, list) and seg:
                m = np.zeros((H, W), dtype=np.uint8)
                for poly in seg:
                    m |= _polygon_mask(np.asarray(poly, dtype=np.float64).reshape(-1, 2), (H, W))
                b = mask_box(m)
                if b is not None:
                    insts.append(Instance(b, m))
            elif "bbox" in a:
                insts.append(Instance(np.asarray(a["bbox"], dtype=np.float64)))
        out.append(_finish_still(Path(info["file_name"]).stem, img, insts, max_side, min_size, min_area))
    return [s for s in out if s.instances]


def _finish_still(name, img, insts, max_side, min_size, min_area) -> StillImage:
    img2, sx, sy = _downscale(img, max_side)
    if sx != 1.0:
        for inst in insts:
            inst.box = inst.box * [sx, sy, sx, sy]
            if inst.mask is not None:
                inst.mask = _downscale(inst.mask, max_side, nearest=True)[0]
    return StillImage(name, img2, [i for i in insts if _keep(i.box, min_size, min_area)])


# ---------------------------------------------------------------------------------------- videos
def find_video_sequences(root: str | Path) -> list:
    """Sequences under ``root`` through ``alpharefine_sdk.eval.datasets`` (all layouts it knows)."""
    from ..eval.datasets import find_sequences

    return list(find_sequences(root))


def _manifest_steps(root: Path) -> Dict[str, int]:
    m = root / "manifest.json"
    if not m.is_file():
        return {}
    try:
        return {s["name"]: int(s.get("step", 1)) for s in json.loads(m.read_text()).get("sequences", [])}
    except (ValueError, KeyError, TypeError):
        return {}


def read_videos(
    root: str | Path,
    *,
    include: Optional[Sequence[str]] = None,
    exclude: Sequence[str] = (),
    max_side: int = 0,
    max_gap_source_frames: int = DEFAULT_MAX_GAP,
    frame_limit: Optional[int] = None,
    use_masks: bool = True,
) -> List[Video]:
    """Decode the videos under ``root`` (names filtered by ``include``/``exclude``).

    ``max_gap_source_frames`` is divided by the sequence's temporal stride from ``manifest.json``
    (when present), so pairs stay within that many frames of the original video.
    """
    root = Path(root)
    steps = _manifest_steps(root)
    seqs = find_video_sequences(root)
    if not seqs:
        raise FileNotFoundError(f"no video sequences found under {root}")
    out: List[Video] = []
    for seq in seqs:
        if include is not None and seq.name not in include:
            continue
        if seq.name in exclude:
            continue
        n = len(seq.frame_paths) if frame_limit is None else min(frame_limit, len(seq.frame_paths))
        frames, masks = [], []
        gt = np.array(seq.gt[:n], dtype=np.float64)
        has_masks = use_masks and getattr(seq, "mask_paths", None) is not None
        sx = sy = 1.0
        for i in range(n):
            f = np.ascontiguousarray(seq.frame(i, image_format="RGB"))
            f, sx, sy = _downscale(f, max_side)
            frames.append(f)
            if has_masks:
                m = np.asarray(seq.mask(i))
                m = ((m > 0).astype(np.uint8) * 255) if m.dtype != np.uint8 or m.max() == 1 else m
                masks.append(_downscale(m, max_side, nearest=True)[0])
        gt = gt * [sx, sy, sx, sy]
        absent = np.asarray(getattr(seq, "absent", np.zeros(len(seq.gt), bool)))[:n]
        gt[absent] = np.nan
        step = int(steps.get(seq.name, 1))
        out.append(
            Video(seq.name, frames, gt, masks if has_masks else None, step=step).with_max_gap(max_gap_source_frames)
        )
    if not out:
        raise ValueError(f"no sequence under {root} is left after include={include} / exclude={list(exclude)}")
    return out
