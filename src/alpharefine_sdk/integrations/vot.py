"""The VOT toolkit: a TraX tracker (``alpharefine-sdk vot trax``) and a local VOT workspace writer
(``alpharefine-sdk vot workspace``). See ``docs/vot.md``.

The TraX side needs only ``vot-trax`` (module ``trax``); the toolkit (``vot-toolkit``, module
``vot``) runs the evaluation and is never imported here. Frames arrive as file paths and are read
in BGR; each target is tracked exactly as ``alpharefine-sdk eval`` tracks it (same seeding, same
failure rule: when the base tracker fails, the previous box is reported).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from typing import Sequence as Seq

import numpy as np

from .._optional import require
from ..boxes import MIN_SIZE, is_usable
from ..boxes import mask_to_box as mask_box  # the one mask-to-box

REGIONS = ("rectangle", "mask")


# --------------------------------------------------------------------------- regions
def encode_mask(mask: np.ndarray) -> str:
    """A 2-D mask as a VOT region line: ``m<x0>,<y0>,<w>,<h>,<RLE>`` over the mask's bounding box,
    row-major, starting with the number of zeros (``m0,0,0,0,0`` when empty)."""
    box = mask_box(mask)
    if box is None:
        return "m0,0,0,0,0"
    x, y, w, h = (int(v) for v in box)
    v = (np.asarray(mask)[y : y + h, x : x + w] > 0).reshape(-1).astype(np.int8)
    change = np.flatnonzero(np.diff(v)) + 1
    runs = np.diff(np.concatenate(([0], change, [v.size])))
    counts = ([0] if v[0] else []) + runs.tolist()
    return f"m{x},{y},{w},{h}," + ",".join(str(int(c)) for c in counts)


def region_line(box: Any) -> str:
    """A box as a VOT rectangle line ``x,y,w,h``."""
    return ",".join(f"{float(v):.4f}" for v in box)


# --------------------------------------------------------------------------- one target
def check_write_back(write_back: Any) -> Union[str, bool]:
    """The library's ``write_back`` (``"auto"``, ``True`` or ``False``), or one clear error."""
    if write_back != "auto" and not isinstance(write_back, bool):
        raise ValueError(f"write_back must be 'auto', True or False; got {write_back!r}")
    return write_back


class VotTarget:
    """One target: the base tracker (wrapped in the refiner unless ``refiner`` is ``None``) driven
    frame by frame, with the evaluation runner's rules (see :mod:`alpharefine_sdk.eval.runs`)."""

    def __init__(
        self,
        factory: Callable[[], Any],
        refiner: Any = None,
        *,
        mask: bool = False,
        write_back: Union[str, bool] = "auto",
        seed: int = 0,
    ) -> None:
        self.factory, self.refiner, self.mask, self.seed = factory, refiner, bool(mask), int(seed)
        self.write_back = check_write_back(write_back)
        self.box: Optional[np.ndarray] = None
        self.last_mask: Optional[np.ndarray] = None
        self._tracker: Any = None
        self._hw: Tuple[int, int] = (0, 0)

    def init(self, frame_bgr: np.ndarray, box: Any) -> None:
        from ..eval.runs import _init_box_for, seed_everything

        self._hw = frame_bgr.shape[:2]
        self.box = np.asarray(box, dtype=np.float64).reshape(4).copy()
        self.last_mask = None
        seed_everything(self.seed)
        if self.refiner is None:
            self._tracker = self.factory()
            self._tracker.init(frame_bgr, _init_box_for(self._tracker, self.box, self._hw))
        else:
            from ..adapters import RefinedTracker

            self._tracker = RefinedTracker(
                self.factory,
                self.refiner.clone(),
                kind="opencv",
                write_back=self.write_back,
                mask=self.mask,
                min_size=MIN_SIZE,
            )
            self._tracker.init(frame_bgr, self.box)

    def update(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Track one frame; returns the reported box (also in :attr:`box`; the mask in :attr:`last_mask`)."""
        from ..eval.runs import _valid_box

        if self._tracker is None:
            raise RuntimeError("update() before init(): the first frame initialises the target")
        ok, box = self._tracker.update(frame_bgr)
        if self.refiner is None:
            b = _valid_box(box, self._hw) if ok else None
            self.last_mask = None
        else:
            rt = self._tracker
            res = rt.last_result
            b = rt.last_box if (ok and res is not None) else (_valid_box(rt.last_box, self._hw) if ok else None)
            self.last_mask = rt.last_mask if (ok and res is not None) else None
        if b is not None:
            self.box = np.asarray(b, dtype=np.float64).copy()
        return self.box


# --------------------------------------------------------------------------- TraX server
def _trax_region_box(trax: Any, region: Any, hw: Tuple[int, int]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(box, mask)`` of an initialisation region (a rectangle, or a mask: its tight box)."""
    if region.type == trax.Region.MASK:
        m = np.asarray(region.array(True))
        full = np.zeros(hw, dtype=np.uint8)
        full[: min(hw[0], m.shape[0]), : min(hw[1], m.shape[1])] = m[: hw[0], : hw[1]]
        box = mask_box(full)
        if box is None:
            raise ValueError("the initialisation mask is empty")
        return box, full
    return np.array(region.bounds(), dtype=np.float64), None  # trax's Rectangle.bounds() is x, y, w, h


def _trax_reply_region(trax: Any, target: VotTarget, report_mask: bool) -> Any:
    if report_mask and target.last_mask is not None:
        m = (np.asarray(target.last_mask) > 0.5).astype(np.uint8)
        b = mask_box(m)
        if b is not None:
            x, y, w, h = (int(v) for v in b)
            return trax.Mask.create(np.ascontiguousarray(m[y : y + h, x : x + w]), x, y)
    x, y, w, h = (float(v) for v in target.box)
    return trax.Rectangle.create(x, y, w, h)


def serve(
    tracker: str = "csrt",
    *,
    tracker_options: Optional[Mapping[str, Any]] = None,
    weights: Any = None,
    refine: bool = True,
    region: str = "rectangle",
    write_back: Union[str, bool] = "auto",
    seed: int = 0,
    device: Optional[str] = None,
    log: Union[bool, str] = False,
) -> None:
    """Run as a TraX tracker until the client quits (what ``trackers.ini`` starts).

    ``region``: what is reported, ``"rectangle"`` or ``"mask"`` (the VOT2020+ segmentation region;
    the refiner's mask, its box where the mask is empty). ``refine=False`` runs the base tracker
    alone (the comparison). Every ``initialize`` starts a fresh target (the toolkit reuses the process).
    """
    from ..eval.trackers import make_factory

    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}; got {region!r}")
    if region == "mask" and not refine:
        raise ValueError("region='mask' needs the refiner (the base tracker has no mask); drop --no-refine")
    check_write_back(write_back)  # a bad value fails here, not after the toolkit has connected
    trax = require("trax")
    # the client waits only a short while for the handshake: answer it first, load the network after
    formats = [trax.Region.RECTANGLE] + ([trax.Region.MASK] if region == "mask" else [])
    name = tracker if not refine else f"{tracker}+AR"
    targets: List[VotTarget] = []
    with trax.Server(
        formats, [trax.Image.PATH], tracker_name=name, tracker_family="alpharefine-sdk", log=log
    ) as server:
        cv2 = require("cv2")
        factory = make_factory(tracker, tracker_options)
        refiner = None
        if refine:
            from ..refiner import Refiner

            refiner = Refiner.from_pretrained(weights, device=device)
        while True:
            request = server.wait()
            if request.type in (trax.TraxStatus.QUIT, "quit"):
                break
            image = request.image["color"] if isinstance(request.image, Mapping) else request.image
            frame = cv2.imread(image.path(), cv2.IMREAD_COLOR)
            if frame is None:
                raise FileNotFoundError(f"cannot read the frame {image.path()!r} the VOT toolkit sent")
            if request.type == trax.TraxStatus.INITIALIZE:
                targets = []
                for obj in request.objects:
                    reg = obj[0] if isinstance(obj, tuple) else obj
                    box, _ = _trax_region_box(trax, reg, frame.shape[:2])
                    t = VotTarget(factory, refiner, mask=region == "mask", write_back=write_back, seed=seed)
                    t.init(frame, box)
                    targets.append(t)
                server.status([(_trax_reply_region(trax, t, False), {}) for t in targets])
            else:
                for t in targets:
                    t.update(frame)
                server.status([(_trax_reply_region(trax, t, region == "mask"), {}) for t in targets])


# --------------------------------------------------------------------------- workspace
STACK = """title: alpharefine-sdk local stack (written by alpharefine-sdk vot workspace)
experiments:
  baseline:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 0
        ignore_unknown: False
        weighted: False
      - type: average_success_plot
        name: success
        burnin: 0
        ignore_unknown: False
"""


def tracker_id(spec: str, refine: bool = True) -> str:
    """The VOT identifier of a tracker (letters, digits, ``-`` and ``_``): ``csrt_AR`` / ``csrt``."""
    from ..eval.trackers import label

    base = re.sub(r"[^A-Za-z0-9_-]+", "_", label(spec)).strip("_") or "tracker"
    return f"{base}_AR" if refine else base


def trax_command(
    spec: str,
    *,
    refine: bool = True,
    region: str = "rectangle",
    options: Optional[Mapping[str, Any]] = None,
    weights: Any = None,
    device: Optional[str] = None,
    write_back: Union[str, bool] = "auto",
    seed: int = 0,
    python: Optional[str] = None,
) -> str:
    """The command line that starts this package's TraX tracker (for ``trackers.ini``)."""
    args = [python or sys.executable, "-m", "alpharefine_sdk", "vot", "trax", "--tracker", spec]
    for k, v in (options or {}).items():
        args += ["--tracker-opt", f"{spec}.{k}={v}"]
    if not refine:
        args.append("--no-refine")
    else:
        from ..cli._options import WRITE_BACK

        word = {v: k for k, v in WRITE_BACK.items()}[check_write_back(write_back)]  # the command line's word
        args += ["--region", region, "--write-back", word]
        if weights is not None:
            args += ["--weights", str(weights)]
    if device is not None:
        args += ["--device", device]
    args += ["--seed", str(int(seed))]
    return " ".join(shlex.quote(a) for a in args)


def _copy_frame(src: Path, dst: Path, seq: Any, i: int) -> None:
    import shutil

    if src.suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(src, dst)
    else:
        cv2 = require("cv2")
        if not cv2.imwrite(str(dst), seq.frame(i, "BGR"), [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise RuntimeError(f"cannot write {dst}")


def write_sequence(seq: Any, folder: Path, *, max_frames: Optional[int] = None, masks: bool = False) -> int:
    """Write one :class:`~alpharefine_sdk.eval.Sequence` in the VOT layout (``color/%08d.jpg``,
    ``groundtruth.txt``, ``sequence``); masks as VOT mask regions when ``masks`` and the sequence has
    them, else rectangles. Returns the number of frames written."""
    if seq.kind == "video" or not seq.frame_paths:
        raise ValueError(f"sequence {seq.name!r}: only frame folders can be written as VOT sequences")
    n = len(seq) if max_frames is None else min(len(seq), int(max_frames))
    color = folder / "color"
    color.mkdir(parents=True, exist_ok=True)
    lines = []
    with_masks = masks and seq.mask_paths is not None
    for i in range(n):
        _copy_frame(Path(seq.frame_paths[i]), color / f"{i + 1:08d}.jpg", seq, i)
        if with_masks:
            lines.append(encode_mask(seq.mask(i)))
        else:
            b = seq.gt[i]
            lines.append(region_line(b) if is_usable(b) else "0")
    if lines[0] in ("0", "m0,0,0,0,0"):
        raise ValueError(f"sequence {seq.name!r} has no target on its first frame; VOT cannot initialise it")
    (folder / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    (folder / "sequence").write_text(f"channels.color=color/%08d.jpg\nformat=default\nfps=30\nname={seq.name}\n")
    return n


def write_workspace(
    workspace: Union[str, Path],
    data: Any,
    *,
    trackers: Seq[str] = ("csrt",),
    tracker_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
    sequences: Optional[Seq[str]] = None,
    max_frames: Optional[int] = None,
    region: str = "rectangle",
    compare: bool = True,
    weights: Any = None,
    device: Optional[str] = None,
    write_back: Union[str, bool] = "auto",
    seed: int = 0,
    stack: Optional[str] = None,
    timeout: int = 300,
    python: Optional[str] = None,
) -> Dict[str, Any]:
    """Write a VOT workspace: ``sequences/`` (the sequences of ``data`` in the VOT layout, masks as
    ground truth when ``region="mask"``), ``trackers.ini`` (each tracker refined, plus the plain
    tracker with ``compare``), ``config.yaml`` and ``stack.yaml`` (an unsupervised experiment with
    accuracy and success analyses, unless ``stack`` names another). Nothing is downloaded: the
    toolkit finds ``sequences/list.txt``. Returns ``{"trackers": [ids], "sequences": {name: frames}}``.
    """
    from ..eval.runner import _sequences
    from ..eval.trackers import make_factory

    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}; got {region!r}")
    check_write_back(write_back)
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 2):
        raise ValueError(f"max_frames must be an int >= 2 (frame 0 initialises the tracker); got {max_frames!r}")
    trackers = list(trackers)
    if not trackers:
        raise ValueError("trackers is empty; name at least one base tracker, e.g. trackers=['csrt']")
    opts = {t: dict((tracker_options or {}).get(t, {})) for t in trackers}
    for t in trackers:
        make_factory(t, opts[t])  # a clear error now, not inside the toolkit
    ws = Path(workspace)
    if ws.exists() and any(ws.iterdir()):
        raise FileExistsError(f"workspace folder {ws} is not empty; choose a new folder")
    seqs = _sequences(data, sequences)
    names = [s.name for s in seqs]
    if len(set(names)) != len(names):
        raise ValueError(f"sequence names must be unique in a VOT workspace; got {names}")
    written: Dict[str, int] = {}
    for s in seqs:
        written[s.name] = write_sequence(s, ws / "sequences" / s.name, max_frames=max_frames, masks=region == "mask")
    (ws / "sequences" / "list.txt").write_text("\n".join(names) + "\n")
    entries, ids = [], []
    for t in trackers:
        for refine in (True, False) if compare else (True,):
            tid = tracker_id(t, refine)
            cmd = trax_command(
                t,
                refine=refine,
                region=region,
                options=opts[t],
                weights=weights,
                device=device,
                write_back=write_back,
                seed=seed,
                python=python,
            )
            label = f"{t}+AR" if refine else t
            entries.append(f"[{tid}]\nlabel = {label}\nprotocol = trax\ncommand = {cmd}\ntimeout = {int(timeout)}\n")
            ids.append(tid)
    (ws / "trackers.ini").write_text("\n".join(entries))
    if stack is None:
        (ws / "stack.yaml").write_text(STACK)
        stack = "./stack.yaml"
    (ws / "config.yaml").write_text(f"stack: {stack}\nregistry:\n- ./trackers.ini\n")
    return {"trackers": ids, "sequences": written}
