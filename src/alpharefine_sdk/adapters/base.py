"""``RefinedTracker``: the shared part of every adapter (refiner set-up, refine + clip, bookkeeping).

Each host kind lives in its own module and subclasses :class:`RefinedTracker`;
``RefinedTracker(base, ...)`` itself detects the kind (see :mod:`.detect`) and returns an instance
of the matching adapter, so ``isinstance(t, RefinedTracker)`` holds for all of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple, Union

import numpy as np

from ..boxes import MIN_SIZE, as_box, as_frame, check_image_format, check_inside, check_min_size, clip_box, is_usable
from ..errors import WeightsError
from ..types import RefineResult

if TYPE_CHECKING:  # the real types for type checkers; nothing heavy imported at run time
    from ..gate import GateArg
    from ..refiner import Refiner

WriteBack = Union[bool, str, Callable[[np.ndarray], None]]
RefinerArg = Union["Refiner", str, "os.PathLike[str]", None]


def resolve_refiner(refiner: RefinerArg, gate: GateArg = "auto") -> Refiner:
    """Turn the ``refiner`` argument into a :class:`~alpharefine_sdk.Refiner`.

    ``None`` loads the packaged default weights (a clear :class:`WeightsError` while none ship);
    a path or model name goes through ``Refiner.from_pretrained``; a refiner is used as it is.
    """
    if refiner is None or isinstance(refiner, (str, os.PathLike)):
        from ..refiner import Refiner

        try:
            refiner = Refiner.from_pretrained(refiner)
        except WeightsError as e:
            if refiner is not None:
                raise
            raise WeightsError(
                "RefinedTracker(base) with refiner=None needs the package's default weights, and this "
                "release ships none. Pass a refiner: RefinedTracker(base, Refiner.from_pretrained("
                "'<model folder | original .pth.tar | org/name>')) or RefinedTracker(base, '<path>')"
            ) from e
    for method in ("initialize", "refine"):
        if not callable(getattr(refiner, method, None)):
            raise TypeError(
                f"refiner must be an alpharefine_sdk.Refiner (with initialize() and refine()); got "
                f"{type(refiner).__name__}. Build one with Refiner.from_pretrained(...)"
            )
    if not (isinstance(gate, str) and gate == "auto"):  # "auto": keep the refiner's own gate
        from ..gate import resolve_gate

        refiner.gate = resolve_gate(gate, getattr(refiner, "config", None))
    return refiner


_OWN_ATTRIBUTES = frozenset(
    {"base", "refiner", "write_back", "mask", "min_size", "image_format"}
    | {"last_box", "last_base_box", "last_result", "last_mask"}
)


class RefinedTracker:
    """Wrap a base tracker so each of its boxes is refined, clipped and (optionally) fed back.

    ``RefinedTracker(base, refiner=None, *, kind=None, write_back="auto", mask=False,
    min_size=10, gate="auto", image_format=None, **options)`` keeps the base tracker's own
    interface (OpenCV ``init``/``update``, pysot ``init``/``track``, pytracking and STARK
    ``initialize``/``track``, got10k ``init``/``update``, or ``fn(frame) -> box``).

    Args:
        base: the tracker to wrap (an instance, a zero-argument factory such as
            ``cv2.TrackerKCF.create``, or a callable ``fn(frame) -> box``).
        refiner: a :class:`~alpharefine_sdk.Refiner` (one per tracker; use ``refiner.clone()``
            for more), a path or model name, or ``None`` for the packaged default weights.
        kind: force the host protocol: "opencv", "pysot", "pytracking", "state_list" (alias
            "stark"), "got10k" or "callable". Detected from the base's methods when ``None``.
        write_back: ``True`` (the original's policy) feeds each refined box back into the base
            tracker's state; ``False`` refines the output only; a callable ``fn(box_xywh)``
            is called with the refined, clipped float box instead. ``"auto"`` (default) is
            ``True`` for trackers with a settable state (pysot, pytracking, STARK-like) and
            ``False`` for OpenCV trackers, whose only "setter" is a fresh ``init`` that throws
            their learned appearance model away (measured: CSRT and NanoTrack get much worse;
            see the adapters documentation).
        mask: also compute the mask (same network pass); kept on :attr:`last_mask`.
        min_size: refined boxes are clipped to the image keeping at least this many pixels a side.
        gate: ``"auto"`` (default) keeps the refiner's gate (for ``Refiner.from_pretrained`` with its
            defaults and for ``refiner=None``: the gate the model recommends); ``None``: no gate; or
            a do-no-harm gate with ``accept(input_box, refined_box) -> bool`` (:class:`~alpharefine_sdk.Gate`).
            Set on the refiner.
        image_format: colour order of the frames you pass, when it differs from the host's usual
            one (BGR for OpenCV and pysot, RGB otherwise).

    After each frame: :attr:`last_box` (the returned box, float64), :attr:`last_base_box` (the
    base tracker's box, float64), :attr:`last_result` (the :class:`RefineResult`, ``None`` when
    refinement was skipped) and :attr:`last_mask`.
    """

    kind: str = ""
    default_image_format: str = "RGB"
    auto_write_back: bool = True  # what write_back="auto" means for this host kind

    def __new__(cls, base: Any = None, *args: Any, **kwargs: Any) -> "RefinedTracker":
        if cls is RefinedTracker:
            from .detect import adapter_class

            cls = adapter_class(base, kwargs.get("kind"))
        return super().__new__(cls)

    def __init__(
        self,
        base: Any,
        refiner: RefinerArg = None,
        *,
        kind: Optional[str] = None,
        write_back: WriteBack = "auto",
        mask: bool = False,
        min_size: float = MIN_SIZE,
        gate: GateArg = "auto",
        image_format: Optional[str] = None,
    ) -> None:
        if write_back == "auto":
            write_back = self.auto_write_back
        if not (isinstance(write_back, bool) or callable(write_back)):
            raise TypeError(f"write_back must be 'auto', True, False or a callable fn(box_xywh); got {write_back!r}")
        min_size = check_min_size(min_size)
        self.base = base
        self.refiner = resolve_refiner(refiner, gate)
        self.write_back = write_back
        self.mask = bool(mask)
        self.min_size = float(min_size)
        self.image_format = check_image_format(image_format or self.default_image_format)
        self._initialized = False
        self._frame_hw: Optional[Tuple[int, int]] = None
        self._clear_last()

    # ------------------------------------------------------------------ bookkeeping
    def _clear_last(self) -> None:
        self.last_box: Optional[np.ndarray] = None
        self.last_base_box: Optional[np.ndarray] = None
        self.last_result: Optional[RefineResult] = None
        self.last_mask: Optional[np.ndarray] = None

    @property
    def is_initialized(self) -> bool:
        return self._initialized

    def _require_init(self, method: str, init_name: str) -> None:
        if not self._initialized:
            raise RuntimeError(
                f"{method}() called before {init_name}(): initialise the wrapped tracker on the first frame"
            )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base={type(self.base).__name__}, write_back={self.write_back!r}, mask={self.mask})"
        )

    # ------------------------------------------------------------------ shared steps
    def _check_start(self, frame: Any, box: Any, name: str = "box") -> Tuple[np.ndarray, np.ndarray]:
        """Validate the first frame and the target's box before the base tracker sees them; the
        frame size is remembered (later frames must keep it)."""
        f = frame_array(frame)
        b = as_box(box, name)
        check_inside(b, f.shape[:2], name)
        self._frame_hw = (int(f.shape[0]), int(f.shape[1]))
        return f, b

    def _check_frame(self, frame: Any) -> np.ndarray:
        """Validate a later frame before the base tracker sees it: same checks, same size as the first."""
        f = frame_array(frame)
        hw = (int(f.shape[0]), int(f.shape[1]))
        if self._frame_hw is not None and hw != self._frame_hw:
            (h0, w0), (h1, w1) = self._frame_hw, hw
            raise ValueError(
                f"frame size changed from {w0}x{h0} to {w1}x{h1} mid-sequence; a tracker follows one video: "
                "call the init method again on the new size (or resize the frames to the first one's size)"
            )
        return f

    def _start(self, frame: Any, box: Any) -> np.ndarray:
        """Initialise the refiner on ``frame``/``box`` (host colour order); returns the float box."""
        b = as_box(box)
        self.refiner.initialize(frame, b, image_format=self.image_format)
        self._clear_last()
        self.last_box = b.copy()
        return b

    def _refine(self, frame: np.ndarray, base_box: Any) -> np.ndarray:
        """Refine ``base_box`` on ``frame`` and clip it to the image; updates the ``last_*`` fields."""
        self.last_base_box = np.asarray(base_box, dtype=np.float64).reshape(4).copy()
        res = self.refiner.refine(frame, self.last_base_box, mask=self.mask, image_format=self.image_format)
        box = clip_box(res.box, frame.shape[:2], self.min_size)
        self.last_result, self.last_mask, self.last_box = res, res.mask, box
        return box

    def _skip(self, base_box: Any) -> None:
        """Record a frame where refinement was skipped (the base answer is reported)."""
        try:
            b = np.asarray(base_box, dtype=np.float64).reshape(4).copy()
        except (TypeError, ValueError):
            b = np.full(4, np.nan)
        self.last_base_box, self.last_box = b, b.copy()
        self.last_result = self.last_mask = None

    def reset(self) -> None:
        """Forget the target: the refiner's template and the ``last_*`` fields; call the init method again."""
        self.refiner.reset()
        self._initialized = False
        self._clear_last()

    def __getattr__(self, name: str) -> Any:
        # Anything the adapter does not define comes from the base tracker (drop-in replacement).
        base = self.__dict__.get("base")
        if base is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        return getattr(base, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # Writes to the base tracker's own attributes reach it (reads come from it too, above);
        # the adapter's attributes, private names and new names stay on the adapter.
        d = self.__dict__
        base = d.get("base")
        if (
            base is None
            or name.startswith("_")
            or name in _OWN_ATTRIBUTES
            or name in d
            or hasattr(type(self), name)
            or not hasattr(base, name)
        ):
            object.__setattr__(self, name, value)
        else:
            setattr(base, name, value)

    def _custom_write_back(self, box: np.ndarray) -> bool:
        """Run a user write-back hook; ``True`` when one ran (or write-back is off)."""
        if self.write_back is False:
            return True
        if callable(self.write_back):
            self.write_back(box.copy())
            return True
        return False


def frame_array(frame: Any) -> np.ndarray:
    """A validated uint8 numpy frame (PIL images and other array-likes are converted)."""
    return as_frame(np.asarray(frame) if not isinstance(frame, np.ndarray) else frame)


def usable(box: Any, frame_hw: Any) -> bool:
    """``True`` when ``box`` is finite, has a positive size and overlaps the frame (refinable)."""
    if not is_usable(box):
        return False
    x, y, w, h = np.asarray(box, dtype=np.float64).reshape(4)
    H, W = frame_hw
    return bool(x < W and y < H and x + w > 0 and y + h > 0)
