"""``Refiner``: initialise on the first frame, then refine a base tracker's box on later frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

import numpy as np

from .boxes import MIN_SIZE, as_box, as_frame, check_image_format, check_inside, check_min_size, clip_box
from .config import ModelConfig
from .gate import Gate, GateArg, resolve_gate
from .geometry.crop import CropWindow, box_from_corners, box_in_crop, crop_patch, crop_window, paste_mask
from .types import RefineResult

if TYPE_CHECKING:
    from .backends.base import Engine


class Refiner:
    """Alpha-Refine box (and mask) refiner for one target.

    Frames are ``H x W x 3`` uint8 (``image_format`` "RGB" by default, "BGR" for OpenCV frames;
    2-D grayscale is expanded to 3 equal channels). Boxes are ``(x, y, w, h)`` floats in pixels,
    top-left origin. Build with :meth:`from_pretrained`; one instance holds one target's template,
    :meth:`clone` gives another target a refiner on the same loaded network.
    """

    def __init__(
        self, engine: "Engine", config: ModelConfig, *, image_format: str = "RGB", gate: GateArg = "auto"
    ) -> None:
        self.engine = engine
        self.config = config
        self.image_format = check_image_format(image_format)
        self.gate = resolve_gate(gate, config)
        self._kernel: Any = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        source: Any = None,
        *,
        revision: Optional[str] = None,
        cache_dir: Optional[str] = None,
        local_files_only: bool = False,
        token: Optional[str] = None,
        device: Optional[str] = None,
        backend: str = "auto",
        precision: str = "fp32",
        image_format: str = "RGB",
        gate: GateArg = "auto",
        **backend_options: Any,
    ) -> "Refiner":
        """Load weights and build a refiner.

        ``source``: ``None`` (the packaged default model), a model folder, ``model.safetensors``,
        an original ``*.pth.tar`` (converted in memory, nothing from its pickle is executed), a
        short model name, or a Hub repo id ``"org/name"``. ``device=None`` picks CUDA when present.
        ``backend``: "auto" (default: the fastest exact engine installed, see
        ``docs/backends.md``), "torch", "onnxruntime" or "openvino"; ``precision``: "fp32"
        (default, exact), "bf16" or "fp16" (CUDA). ``gate``: ``"auto"`` (default) uses the gate
        the model's ``config.json`` recommends (trained models ship one; converted original
        weights name none, so they run ungated and exact), ``None`` turns it off, or pass a
        :class:`~alpharefine_sdk.gate.Gate`.
        """
        from .backends import make_engine
        from .weights.resolve import load_source

        net, config = load_source(
            source, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
        engine = make_engine(backend, net, config, device=device, precision=precision, **backend_options)
        return cls(engine, config, image_format=image_format, gate=gate)

    def clone(self) -> "Refiner":
        """A fresh, uninitialised refiner on the same network (weights in memory once)."""
        return type(self)(self.engine, self.config, image_format=self.image_format, gate=self.gate)

    # ------------------------------------------------------------------ weights, export, speed
    # Each delegates to the module that owns the concern.
    def save_pretrained(self, folder: Any, **kwargs: Any) -> Any:
        """Write ``model.safetensors``, ``config.json`` and a model card to ``folder``."""
        from .weights.hub import save_pretrained

        return save_pretrained(self, folder, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Publish the weights to a Hugging Face Hub repo (see ``docs/weights.md``)."""
        from .weights.hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def export_onnx(self, out_dir: Any, **kwargs: Any) -> Any:
        """Export the template and search graphs to ONNX (see ``docs/backends.md``)."""
        from .backends.onnx_export import export_onnx

        return export_onnx(self, out_dir, **kwargs)

    def optimize(self, **kwargs: Any) -> "Refiner":
        """Opt in to the fast GPU path (half precision, fused correlation, CUDA graphs...)."""
        from .backends.gpu import optimize

        return optimize(self, **kwargs)

    # ------------------------------------------------------------------ state
    @property
    def is_initialized(self) -> bool:
        return self._kernel is not None

    def reset(self) -> None:
        """Forget the template; :meth:`initialize` must be called again."""
        self._kernel = None

    @property
    def net(self) -> Any:
        """The loaded network (:class:`~alpharefine_sdk.nn.arnet.RefinerNet`), whatever the backend."""
        return getattr(self.engine, "net", None)

    # ------------------------------------------------------------------ preparation
    def _prepare(
        self, frame: Any, box: Any, image_format: Optional[str]
    ) -> Tuple[np.ndarray, np.ndarray, CropWindow, np.ndarray]:
        fmt = check_image_format(image_format or self.image_format)
        frame = as_frame(frame)
        b = as_box(box)
        check_inside(b, frame.shape[:2])
        pre = self.config.preprocessing
        win = crop_window(b, pre.search_factor, pre.input_size)
        crop = crop_patch(frame, win)
        if crop.ndim == 2:
            crop = np.repeat(crop[:, :, None], 3, axis=2)
        elif fmt == "BGR":
            crop = crop[:, :, ::-1]
        return frame, b, win, np.ascontiguousarray(crop)

    # ------------------------------------------------------------------ API
    def initialize(self, frame: Any, box: Any, *, image_format: Optional[str] = None) -> None:
        """Compute and keep the template of the target in ``box`` on ``frame``."""
        _, _, _, crop = self._prepare(frame, box, image_format)
        self._kernel = self.engine.template(crop[None])

    def refine(
        self,
        frame: Any,
        box: Any,
        *,
        mask: bool = False,
        clip: bool = False,
        min_size: float = MIN_SIZE,
        image_format: Optional[str] = None,
    ) -> RefineResult:
        """Refine the base tracker's ``box`` on ``frame``.

        Returns a :class:`RefineResult` that unpacks as ``box, mask``: the refined float64
        ``(x, y, w, h)`` (exactly the original's, unclipped unless ``clip=True``, which clips to the
        frame keeping ``min_size`` pixels, a number in [1, 1e5]) and, with ``mask=True``, an
        ``H x W`` float32 probability map (same backbone pass). The box is always finite with
        ``w, h > 0``: when the network's box is degenerate (not finite, or a side <= 0) or the gate
        rejects it, the input box comes back with ``gated=True`` and the ``reason``
        (``network_box`` keeps what the network said).
        """
        if self._kernel is None:
            raise RuntimeError(
                "refine() called before initialize(frame, box): initialize the refiner on the first frame"
            )
        min_size = check_min_size(min_size)
        frame, b, win, crop = self._prepare(frame, box, image_format)
        corners, masks, scores = _search(self.engine, crop[None], self._kernel, [win], mask)
        return self._result(
            corners[0],
            None if masks is None else masks[0],
            b,
            win,
            frame.shape[:2],
            clip,
            min_size,
            None if scores is None else scores[0],
        )

    def _result(
        self,
        corners: np.ndarray,
        mask_crop: Optional[np.ndarray],
        b: np.ndarray,
        win: CropWindow,
        hw: Tuple[int, int],
        clip: bool,
        min_size: float,
        scores: Optional[np.ndarray] = None,
    ) -> RefineResult:
        net_box = box_from_corners(corners, win) if np.isfinite(corners).all() else None
        reason = degenerate_reason(net_box)
        out = b.copy() if reason is not None else net_box.copy()  # degenerate: the input box, marked
        pair = None if scores is None else (float(scores[0]), float(scores[1]))
        if reason is None and self.gate is not None:
            if pair is not None and isinstance(self.gate, Gate):
                ok = self.gate.accept(b, out, pair)
                if self.gate.prefers_input(pair):
                    reason = "gate: the model rates the input box higher than its own"
            else:
                ok = self.gate.accept(b, out)
            if not ok:
                out, reason = b.copy(), reason or "gate: the refined box disagrees too much with the input box"
        if clip:
            out = clip_box(out, hw, min_size)
        m = paste_mask(mask_crop, win, hw) if mask_crop is not None else None
        s, s_in = (None, None) if pair is None else pair
        return RefineResult(out, m, b, reason is not None, reason, net_box, s, s_in)


def _search(engine: Any, crops: np.ndarray, kernels: Any, wins: Sequence[CropWindow], mask: bool):
    """Corners, masks and, when the engine's network predicts IoUs, the scores ``[B, 2]``."""
    if not getattr(engine, "scores", False):
        corners, masks = engine.search(crops, kernels, with_mask=mask)
        return corners, masks, None
    inp = np.stack([_corners_in_crop(w) for w in wins]).astype(np.float32)
    return engine.search_scored(crops, kernels, inp, with_mask=mask)


def _corners_in_crop(win: CropWindow) -> np.ndarray:
    x, y, w, h = box_in_crop(win.box, win)
    return np.array([x, y, x + w, y + h])


def degenerate_reason(box: Optional[np.ndarray]) -> Optional[str]:
    """Why a network box cannot be returned (``None`` when it can): not finite, or a width or
    height that is not positive."""
    if box is None or not np.isfinite(box).all():
        return "degenerate: the network's box is not finite"
    if box[2] <= 0 or box[3] <= 0:
        return f"degenerate: the network's box has width {box[2]:.3g} and height {box[3]:.3g} (must be > 0)"
    return None


def refine_many(
    refiners: Sequence[Refiner],
    frame: Any,
    boxes: Sequence[Any],
    *,
    mask: bool = False,
    clip: bool = False,
    min_size: float = MIN_SIZE,
    image_format: Optional[str] = None,
) -> List[RefineResult]:
    """Refine one box per initialised refiner on the same frame in one batched network pass.

    All refiners must share one engine (see :meth:`Refiner.clone`). Results equal N separate
    :meth:`Refiner.refine` calls.
    """
    refiners = list(refiners)
    min_size = check_min_size(min_size)
    if len(refiners) != len(boxes):
        raise ValueError(f"got {len(refiners)} refiners but {len(boxes)} boxes; pass one box per refiner")
    if not refiners:
        return []
    engine = refiners[0].engine
    for i, r in enumerate(refiners):
        if r.engine is not engine:
            raise ValueError(f"refiners[{i}] runs on another network; build them with clone() from one refiner")
        if not r.is_initialized:
            raise RuntimeError(f"refiners[{i}] is not initialised: call initialize(frame, box) first")
    prepared = [r._prepare(frame, b, image_format) for r, b in zip(refiners, boxes)]
    crops = np.stack([p[3] for p in prepared])
    kernels = engine.concat([r._kernel for r in refiners])
    corners, masks, scores = _search(engine, crops, kernels, [p[2] for p in prepared], mask)
    hw = prepared[0][0].shape[:2]
    return [
        r._result(
            corners[i],
            None if masks is None else masks[i],
            p[1],
            p[2],
            hw,
            clip,
            min_size,
            None if scores is None else scores[i],
        )
        for i, (r, p) in enumerate(zip(refiners, prepared))
    ]
