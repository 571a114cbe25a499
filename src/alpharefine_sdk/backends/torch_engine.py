"""The reference engine: eager PyTorch, exact fp32 by default."""

from __future__ import annotations

import contextlib
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import ModelConfig
from ..geometry.normalize import normalize_crops, normalize_crops_torch
from ..nn.arnet import RefinerNet

PRECISIONS = ("fp32", "bf16", "fp16")


def default_device(device: Optional[str] = None) -> torch.device:
    """``device`` if given, else CUDA when present, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchEngine:
    """Frozen, eval-mode network on one device; inputs are uint8 crops, outputs numpy."""

    name = "torch"

    def __init__(
        self, net: RefinerNet, config: ModelConfig, *, device: Optional[str] = None, precision: str = "fp32"
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
        self.device = default_device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on CPU")
        self.net = net.to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.config = config
        self.precision = precision

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _inputs(self, crops: np.ndarray) -> torch.Tensor:
        pre = self.config.preprocessing
        if self.device.type == "cpu":
            return torch.from_numpy(normalize_crops(crops, pre.mean, pre.std))
        u8 = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device, non_blocking=True)
        return normalize_crops_torch(u8, pre.mean, pre.std).to(self.dtype)

    def template(self, crops: np.ndarray) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            return self.net.template_kernel(self._inputs(crops)).to(self.dtype)

    def concat(self, kernels: Sequence[torch.Tensor]) -> torch.Tensor:
        return kernels[0] if len(kernels) == 1 else torch.cat(list(kernels), dim=0)

    def search(
        self, crops: np.ndarray, kernels: torch.Tensor, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        with torch.inference_mode(), self._autocast():
            corners, mask = self.net.search(self._inputs(crops), kernels, with_mask)
        corners_np = corners.float().cpu().numpy()
        mask_np = mask.float().cpu().numpy() if mask is not None else None
        return corners_np, mask_np
