"""Result types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np


@dataclass(frozen=True)
class RefineResult:
    """What :meth:`Refiner.refine` returns; reads like the tuple ``(box, mask)``: ``box, mask = result``,
    ``result[0]``, ``result[-1]``, ``len(result) == 2``.

    Attributes:
        box: refined ``(x, y, w, h)`` float64 in frame pixels (unclipped unless ``clip=True``).
        mask: ``H x W`` float32 foreground probability in frame coordinates, or ``None``.
        input_box: the box that was refined (float64).
        gated: ``True`` when the input box was kept instead of the network's: the do-no-harm gate
            rejected it, or it was degenerate (see ``reason``).
        reason: why the input box was kept (``None`` when ``gated`` is ``False``): starts with
            ``"gate"`` or ``"degenerate"``.
        network_box: the network's box mapped to the frame exactly as the original computes it,
            before the degenerate check, the gate and clipping (``None`` if it was not finite);
            what parity with the original is measured on.
        score: the model's own estimate (0..1) of the IoU of the network's box with the target, for
            models with a learned confidence (an IoU head); ``None`` otherwise.
        input_score: the same estimate for the input box; the default gate of such models keeps
            the input box when this is higher than ``score`` (see :class:`~alpharefine_sdk.gate.Gate`).
    """

    box: np.ndarray
    mask: Optional[np.ndarray] = None
    input_box: Optional[np.ndarray] = None
    gated: bool = False
    reason: Optional[str] = None
    network_box: Optional[np.ndarray] = None
    score: Optional[float] = None
    input_score: Optional[float] = None

    def __iter__(self) -> Iterator[Optional[np.ndarray]]:
        yield self.box
        yield self.mask

    def __getitem__(self, index: Any) -> Any:
        return (self.box, self.mask)[index]

    def __len__(self) -> int:
        return 2
