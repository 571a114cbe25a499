"""Readers for tracking sequences on disk: OTB, LaSOT, GOT-10k, VOT, DAVIS, a folder of frames and a
video file. Boxes are ``(x, y, w, h)`` float64; frames load lazily.

Conventions (as the toolkits do):

* OTB ``groundtruth_rect.txt`` boxes pass through unchanged (OTB's 1-based origin is kept).
* VOT 8-value rotated polygons become the axis-aligned box of their vertices (min/max), as the VOT
  toolkit's ``Polygon.bounds()`` does; 4-value VOT lines pass through.
* DAVIS: the box is the tight box of the mask, ``(x0, y0, x1 - x0 + 1, y1 - y0 + 1)``; empty masks
  are absent frames. The object is every non-zero pixel (single-object DAVIS-2016 masks).
* GOT-10k ``absence.label`` and LaSOT ``full_occlusion.txt`` / ``out_of_view.txt`` mark absent
  frames; in OTB-layout files (UAV123, DTB70, UAVDT, VOT-LT) a row with zero width or height does. Absent or unknown frames have a NaN ground-truth row and are skipped by the metrics.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union
from typing import Sequence as Seq

import numpy as np

__all__ = ["Sequence", "load_sequence", "find_sequences", "read_boxes", "KINDS", "IMAGE_EXTS", "VIDEO_EXTS"]

KINDS = ("otb", "lasot", "got10k", "vot", "davis", "video", "frames")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
_GT_NAMES = ("groundtruth_rect.txt", "groundtruth.txt")
PathLike = Union[str, "os.PathLike[str]"]


def _cv2() -> Any:
    from .._optional import require

    return require("cv2")


@dataclass
class Sequence:
    """One annotated sequence. ``gt`` is ``[N, 4]`` float64 xywh with NaN rows where the target is
    absent or unknown; ``absent`` is ``[N]`` bool. ``frame_paths`` is empty for a video file."""

    name: str
    kind: str
    frame_paths: List[Path]
    gt: np.ndarray
    absent: np.ndarray
    mask_paths: Optional[List[Path]]
    path: Path
    _video: Any = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.gt.shape[0])

    @property
    def init_box(self) -> np.ndarray:
        """The first frame's box; ``ValueError`` if the target is not annotated there."""
        from ..boxes import is_usable

        box = self.gt[0]
        if not is_usable(box):
            raise ValueError(
                f"sequence {self.name!r} ({self.path}) has no valid box on frame 0; cannot initialise a tracker"
            )
        return box.copy()

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame index {i} out of range for sequence {self.name!r} with {n} frames")
        return i % n

    def frame(self, i: int, image_format: str = "RGB") -> np.ndarray:
        """Frame ``i`` as ``H x W x 3`` uint8 in ``image_format`` ("RGB" or "BGR")."""
        from ..boxes import check_image_format

        fmt = check_image_format(image_format)
        i = self._check_index(i)
        if self.kind == "video":
            bgr = self._read_video_frame(i)
        else:
            bgr = _imread(self.frame_paths[i])
        return bgr if fmt == "BGR" else np.ascontiguousarray(bgr[:, :, ::-1])

    def frames(self, image_format: str = "RGB", start: int = 0, stop: Optional[int] = None) -> Iterator[np.ndarray]:
        """Iterate over frames ``start..stop-1``, loading one at a time."""
        stop = len(self) if stop is None else min(stop, len(self))
        for i in range(start, stop):
            yield self.frame(i, image_format)

    def mask(self, i: int) -> Optional[np.ndarray]:
        """Ground-truth mask of frame ``i`` as bool ``H x W`` (``None`` without masks)."""
        if self.mask_paths is None:
            return None
        i = self._check_index(i)
        return _read_mask(self.mask_paths[i])

    def _read_video_frame(self, i: int) -> np.ndarray:
        cv2 = _cv2()
        state = self._video
        if state is None or state[1] != i:
            if state is not None:
                state[0].release()
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise FileNotFoundError(f"cannot open video {self.path}")
            if i:
                cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            state = [cap, i]
        ok, img = state[0].read()
        if not ok or img is None:
            raise FileNotFoundError(
                f"cannot read frame {i} of video {self.path} (the file may be shorter than {len(self)} frames)"
            )
        state[1] = i + 1
        self._video = state
        return img

    def __getstate__(self) -> dict:  # picklable for worker processes (drop the open capture)
        d = dict(self.__dict__)
        d["_video"] = None
        return d


# ---------------------------------------------------------------------------------------- files
def _read_image_bytes(path: Path, what: str) -> np.ndarray:
    from .._files import MAX_IMAGE_BYTES, read_limited

    if not Path(path).exists():
        raise FileNotFoundError(f"{what} file is missing: {path}")
    data = read_limited(path, MAX_IMAGE_BYTES, f"{what} file")
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9"):
        raise ValueError(
            f"{what} {path} is truncated (the JPEG has no end marker; a decoder would fill the rest with grey): "
            "copy or extract it again"
        )
    return np.frombuffer(data, dtype=np.uint8)


def _imread(path: Path) -> np.ndarray:
    cv2 = _cv2()
    img = cv2.imdecode(_read_image_bytes(path, "frame"), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode image {path} (corrupt or not an image)")
    return img


def _read_mask(path: Path) -> np.ndarray:
    cv2 = _cv2()
    m = cv2.imdecode(_read_image_bytes(path, "mask"), cv2.IMREAD_UNCHANGED)
    if m is None:
        raise ValueError(f"cannot decode mask {path}")
    if m.ndim == 3:
        m = m[:, :, :3].max(axis=2)
    return m > 0


_SPLIT = re.compile(r"[,\s;]+")


def _parse_values(text: str, path: Path, lineno: int) -> List[float]:
    try:
        return [float(v) for v in _SPLIT.split(text.strip()) if v != ""]
    except ValueError:
        raise ValueError(
            f"{path}:{lineno}: malformed line {text.strip()!r}: expected comma- or space-separated numbers"
        ) from None


def read_boxes(path: PathLike, allow_polygons: bool = True) -> np.ndarray:
    """Read a ground-truth file: one ``x,y,w,h`` (or 8-value polygon) line per frame -> ``[N, 4]``.

    Separators may be commas, tabs or spaces; ``nan`` values (or an empty line) mark unknown frames.
    Polygons become their axis-aligned bounding box (VOT toolkit convention).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    lines = _read_text(path, "ground-truth file").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"ground-truth file is empty: {path}; it needs one x,y,w,h line per frame")
    out = np.full((len(lines), 4), np.nan)
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        v = _parse_values(line, path, k + 1)
        if len(v) == 4:
            out[k] = v
        elif len(v) == 8 and allow_polygons:
            xs, ys = v[0::2], v[1::2]
            out[k] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        elif len(v) == 1 and np.isnan(v[0]):
            continue
        else:
            want = "4 (x,y,w,h)" + (" or 8 (polygon)" if allow_polygons else "")
            raise ValueError(f"{path}:{k + 1}: malformed line {line.strip()!r}: expected {want} numbers, got {len(v)}")
    return out


def _read_text(path: Path, what: str) -> str:
    """A text file (regular, at most 256 MiB, UTF-8) or one ``ValueError`` naming it."""
    from .._files import MAX_TEXT_BYTES, read_limited

    data = read_limited(path, MAX_TEXT_BYTES, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{what} {path} is not text (byte {e.start} is not UTF-8); it needs one x,y,w,h line per frame"
        ) from None


def _read_flags(path: Path, n: int) -> np.ndarray:
    """Per-frame 0/1 flags, one per line or comma-separated on one line."""
    text = _read_text(path, "flag file").strip()
    if not text:
        raise ValueError(f"flag file is empty: {path}; it needs one 0/1 value per frame")
    vals = []
    for k, tok in enumerate(_SPLIT.split(text)):
        if tok == "":
            continue
        try:
            vals.append(int(float(tok)) != 0)
        except ValueError:
            raise ValueError(f"{path}: malformed value {tok!r} at position {k + 1}: expected 0 or 1") from None
    if len(vals) != n:
        raise ValueError(
            f"{path} has {len(vals)} values but the ground truth has {n} lines; one flag per frame is needed"
        )
    return np.array(vals, dtype=bool)


def _list_images(folder: Path) -> List[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def _check_contiguous(frames: List[Path], folder: Path) -> None:
    """Raise naming the first missing frame when numbered file names have a gap."""
    nums = []
    for p in frames:
        m = re.search(r"(\d+)$", p.stem)
        if m is None:
            return
        nums.append(int(m.group(1)))
    for a, b, p in zip(nums, nums[1:], frames[1:]):
        if b != a + 1:
            width = len(re.search(r"(\d+)$", p.stem).group(1))  # type: ignore[union-attr]
            missing = re.sub(r"\d+$", str(a + 1).zfill(width), p.stem) + p.suffix
            raise FileNotFoundError(f"frame {missing} is missing in {folder} (frames jump from {a} to {b})")


def _fit(frames: List[Path], gt: np.ndarray, folder: Path, gt_path: Path) -> np.ndarray:
    """Match frames and ground truth: error on missing frames and on a short ground truth; a
    single line is an initialisation-only sequence (GOT-10k's test split, ``init_box``), whose
    later frames are unknown (NaN)."""
    if not frames:
        raise FileNotFoundError(f"no frames ({', '.join(IMAGE_EXTS)}) found in {folder}")
    _check_contiguous(frames, folder)
    if len(frames) < len(gt):
        raise FileNotFoundError(
            f"{gt_path} has {len(gt)} lines but only {len(frames)} frames exist in {folder}: "
            f"frame {len(frames) + 1} onwards is missing"
        )
    return _pad_init_only(gt, len(frames), gt_path, f"{len(frames)} frames exist in {folder}")


def _pad_init_only(gt: np.ndarray, n: int, gt_path: Path, have: str) -> np.ndarray:
    if len(gt) == n:
        return gt
    if len(gt) > 1:
        raise ValueError(
            f"{gt_path} has {len(gt)} lines but {have}: the ground truth is short (frames "
            f"{len(gt) + 1}..{n} have no box). Complete it (a 'nan,nan,nan,nan' line marks an unknown "
            "frame), or keep only frame 0's line for an initialisation-only sequence"
        )
    return np.vstack([gt, np.full((n - len(gt), 4), np.nan)])  # only frame 0 is annotated


def _finish(
    name: str,
    kind: str,
    frames: List[Path],
    gt: np.ndarray,
    absent: np.ndarray,
    masks: Optional[List[Path]],
    path: Path,
) -> Sequence:
    gt = gt.astype(np.float64, copy=True)
    absent = np.asarray(absent, dtype=bool)
    gt[absent] = np.nan
    if not np.isfinite(gt).all(axis=1).any():
        raise ValueError(f"sequence {path} has no annotated frame (all ground-truth rows are absent or NaN)")
    return Sequence(name, kind, frames, gt, absent, masks, path)


# ---------------------------------------------------------------------------------------- layouts
def _gt_files(folder: Path) -> List[Path]:
    return sorted(folder.glob("groundtruth_rect*.txt"))


def detect_kind(path: PathLike) -> Optional[str]:
    """The layout of one sequence folder or video file, or ``None`` if it is not a sequence."""
    p = Path(path)
    if p.is_file():
        return "video" if p.suffix.lower() in VIDEO_EXTS else None
    if not p.is_dir():
        return None
    if p.parent.parent.name == "JPEGImages" and (p.parent.parent.parent / "Annotations").is_dir():
        return "davis"
    if (p / "color").is_dir() or (p / "sequence").is_file():
        return "vot"
    if (p / "img").is_dir():
        if _gt_files(p):
            return "otb"
        if (p / "groundtruth.txt").is_file():
            return "lasot"
        return None
    if (p / "groundtruth.txt").is_file() and _list_images(p):
        if (p / "absence.label").is_file() or (p / "meta_info.ini").is_file():
            return "got10k"
        return "frames"
    if _gt_files(p) and _list_images(p):
        return "frames"
    return None


def _load_otb(p: Path, gt_file: Optional[Path] = None) -> List[Sequence]:
    files = [gt_file] if gt_file else _gt_files(p)
    frames = _list_images(p / "img")
    out = []
    for f in files:
        gt = _fit(frames, read_boxes(f, allow_polygons=False), p / "img", f)
        suffix = f.name[len("groundtruth_rect") : -len(".txt")]  # "" or ".1", ".2" (OTB Jogging, Skating2)
        absent = (gt[:, 2] <= 0) | (gt[:, 3] <= 0)  # 0,0,0,0 rows: target out of view (UAV123, VOT-LT)
        out.append(_finish(p.name + suffix, "otb", frames[: len(gt)], gt, absent, None, p))
    return out


def _load_lasot(p: Path) -> Sequence:
    gt_path = p / "groundtruth.txt"
    gt = read_boxes(gt_path, allow_polygons=False)
    frames = _list_images(p / "img")
    gt = _fit(frames, gt, p / "img", gt_path)
    absent = np.zeros(len(gt), bool)
    for flag in ("full_occlusion.txt", "out_of_view.txt"):
        if (p / flag).is_file():
            f = _read_flags(p / flag, len(gt))
            absent |= f
    return _finish(p.name, "lasot", frames[: len(gt)], gt, absent, None, p)


def _load_got10k(p: Path) -> Sequence:
    gt_path = p / "groundtruth.txt"
    gt = read_boxes(gt_path, allow_polygons=False)
    n_lines = len(gt)
    frames = _list_images(p)
    gt = _fit(frames, gt, p, gt_path)
    absent = np.zeros(len(gt), bool)
    if (p / "absence.label").is_file():
        absent[:n_lines] = _read_flags(p / "absence.label", n_lines)
    return _finish(p.name, "got10k", frames, gt, absent, None, p)


def _load_vot(p: Path) -> Sequence:
    gt_path = p / "groundtruth.txt"
    gt = read_boxes(gt_path, allow_polygons=True)
    folder = p / "color" if (p / "color").is_dir() else p
    frames = _list_images(folder)
    gt = _fit(frames, gt, folder, gt_path)
    return _finish(p.name, "vot", frames, gt, np.zeros(len(gt), bool), None, p)


def _load_frames(p: Path, init_box: Any = None) -> Sequence:
    frames = _list_images(p)
    files = [p / n for n in _GT_NAMES if (p / n).is_file()] + _gt_files(p)
    if files:
        gt = _fit(frames, read_boxes(files[0]), p, files[0])
    elif init_box is not None:
        gt = _fit(frames, _init_gt(init_box), p, p)
    else:
        raise FileNotFoundError(f"no groundtruth.txt in {p}; add one (x,y,w,h per line) or pass init_box=(x, y, w, h)")
    return _finish(p.name, "frames", frames, gt, np.zeros(len(gt), bool), None, p)


def _init_gt(init_box: Any) -> np.ndarray:
    from ..boxes import as_box

    return as_box(init_box, "init_box")[None]


def _load_davis_seq(img_dir: Path) -> Sequence:
    res, name = img_dir.parent.name, img_dir.name
    ann_dir = img_dir.parent.parent.parent / "Annotations" / res / name
    frames = _list_images(img_dir)
    if not frames:
        raise FileNotFoundError(f"no frames found in {img_dir}")
    _check_contiguous(frames, img_dir)
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"DAVIS annotations folder not found: {ann_dir} (expected beside JPEGImages)")
    masks = [ann_dir / (f.stem + ".png") for f in frames]
    missing = [m for m in masks if not m.is_file()]
    if missing:
        raise FileNotFoundError(
            f"mask {missing[0]} is missing ({len(missing)} of {len(masks)} masks missing in {ann_dir})"
        )
    gt = np.full((len(frames), 4), np.nan)
    for k, m in enumerate(masks):
        ys, xs = np.nonzero(_read_mask(m))
        if xs.size:
            gt[k] = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    absent = ~np.isfinite(gt).all(axis=1)
    return _finish(name, "davis", frames, gt, absent, masks, img_dir)


def _video_gt(p: Path, init_box: Any) -> np.ndarray:
    if init_box is not None:
        return _init_gt(init_box)
    for cand in (p.with_suffix(".txt"), p.parent / f"{p.stem}_groundtruth.txt", p.parent / f"{p.stem}.groundtruth.txt"):
        if cand.is_file():
            return read_boxes(cand)
    raise FileNotFoundError(
        f"no ground truth for video {p}: put x,y,w,h lines in {p.with_suffix('.txt').name} beside it or pass init_box=(x, y, w, h)"
    )


def _load_video(p: Path, init_box: Any = None) -> Sequence:
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {p} (missing file or no codec in this OpenCV build)")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if n <= 0:  # container without a frame count: count by decoding
        n = 0
        while cap.grab():
            n += 1
    cap.release()
    if n == 0:
        raise ValueError(f"video {p} has no frames")
    gt = _video_gt(p, init_box)
    if len(gt) > n:
        raise ValueError(f"the ground truth for {p} has {len(gt)} lines but the video has {n} frames")
    gt = _pad_init_only(gt, n, p.with_suffix(".txt") if init_box is None else p, f"the video {p} has {n} frames")
    return _finish(p.stem, "video", [], gt, np.zeros(n, bool), None, p)


def load_sequence(path: PathLike, kind: Optional[str] = None, *, init_box: Any = None) -> Sequence:
    """Load one sequence folder (OTB, LaSOT, GOT-10k, VOT, DAVIS ``JPEGImages/<res>/<name>``, a folder
    of frames with ``groundtruth.txt``) or a video file. ``kind=None`` detects the layout.

    ``init_box`` gives the first frame's box for a video or frame folder without ground truth.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"sequence path not found: {p}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} or None (auto-detect); got {kind!r}")
    if p.is_dir() and (p / "JPEGImages").is_dir() and (p / "Annotations").is_dir():
        raise ValueError(
            f"{p} is a DAVIS root holding many sequences: use find_sequences({str(p)!r}) or pass JPEGImages/<res>/<name>"
        )
    detected = detect_kind(p)
    if kind is None:
        if detected is None and p.is_dir() and _list_images(p):
            detected = "frames"  # a bare folder of frames: needs init_box (checked by the loader)
        if detected is None:
            raise ValueError(
                f"cannot tell the layout of {p}: expected OTB (img/ + groundtruth_rect.txt), LaSOT (img/ + groundtruth.txt), "
                "GOT-10k (frames + groundtruth.txt + absence.label), VOT (color/ + groundtruth.txt), DAVIS "
                "(JPEGImages/<res>/<name>), frames + groundtruth.txt, or a video file"
            )
        kind = detected
    if kind == "otb":
        seqs = _load_otb(p)
        if not seqs:
            raise FileNotFoundError(f"no groundtruth_rect.txt in {p}")
        if len(seqs) > 1:
            raise ValueError(
                f"{p} holds {len(seqs)} targets ({', '.join(s.name for s in seqs)}); use find_sequences to get all of them"
            )
        return seqs[0]
    loaders = {"lasot": _load_lasot, "got10k": _load_got10k, "vot": _load_vot, "davis": _load_davis_seq}
    if kind in loaders:
        return loaders[kind](p)
    if kind == "video":
        return _load_video(p, init_box)
    return _load_frames(p, init_box)


def _davis_sequences(root: Path) -> List[Sequence]:
    res_dirs = sorted(d for d in (root / "JPEGImages").iterdir() if d.is_dir())
    if any(d.name == "480p" for d in res_dirs):
        res_dirs = [d for d in res_dirs if d.name == "480p"]
    out = []
    for res in res_dirs:
        for d in sorted(x for x in res.iterdir() if x.is_dir()):
            out.append(_load_davis_seq(d))
    return out


def find_sequences(root: PathLike) -> List[Sequence]:
    """Every sequence under ``root`` (recursive; mixed layouts are detected per folder; a DAVIS root
    yields one sequence per object folder; video files count when they have a ``<stem>.txt``
    ground truth beside them). Names are made unique by appending ``_2``, ``_3``..."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"dataset path not found: {root}")
    if root.is_file() or detect_kind(root) is not None:
        found = _load_otb(root) if detect_kind(root) == "otb" else [load_sequence(root)]
    else:
        found = []
        _walk(root, found)
    seen: dict = {}
    for s in found:
        k = seen.get(s.name, 0) + 1
        seen[s.name] = k
        if k > 1:
            s.name = f"{s.name}_{k}"
    return found


def _walk(folder: Path, out: List[Sequence]) -> None:
    if (folder / "JPEGImages").is_dir() and (folder / "Annotations").is_dir():
        out.extend(_davis_sequences(folder))
        return
    kind = detect_kind(folder)
    if kind == "otb":
        out.extend(_load_otb(folder))
        return
    if kind is not None:
        out.append(load_sequence(folder, kind))
        return
    try:
        entries = sorted(folder.iterdir())
    except PermissionError:
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            _walk(e, out)
        elif e.suffix.lower() in VIDEO_EXTS and e.with_suffix(".txt").is_file():
            out.append(_load_video(e))


def subset(seqs: Seq[Sequence], names: Optional[Seq[str]]) -> List[Sequence]:
    """Keep the sequences whose name is in ``names`` (all when ``names`` is empty); error on unknown names."""
    if not names:
        return list(seqs)
    by = {s.name: s for s in seqs}
    unknown = [n for n in names if n not in by]
    if unknown:
        raise ValueError(f"unknown sequence name(s) {unknown}; available: {', '.join(sorted(by))}")
    return [by[n] for n in names]
