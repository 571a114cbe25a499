"""Training forward and loss: MSE on corners in crop units (pixels / S) plus lambda * BCE on masks.

Scale: the paper's loss is ``MSE(raw pixels) + 1000 * BCE``. With corners divided by the crop size
S = 256 the MSE shrinks by S^2, so ``mask_weight = 1000 / 256^2`` keeps the paper's balance (and
Adam is invariant to the overall factor). The mask term is the per-sample mean BCE over pixels,
zero for box-only samples, averaged over the whole batch, so splitting a batch over processes
gives the same gradient.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.arnet import RefinerNet
from ..nn.heads import upsample_mask_logits


class TrainForward(nn.Module):
    """Wraps a :class:`RefinerNet` for training: corners and full-size mask logits in one pass
    (a module so DistributedDataParallel can hook it)."""

    def __init__(self, net: RefinerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, template: Tensor, search: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.net.search_outputs(search, self.net.template_kernel(template), True)
        return out.corners, upsample_mask_logits(out.mask_logits.float(), search.shape[-1])


def refiner_loss(
    corners: Tensor, logits: Tensor, gt: Tensor, mask: Tensor, has_mask: Tensor, *, size: int, mask_weight: float
) -> Tuple[Tensor, Dict[str, float]]:
    """Total loss and its parts (``corner_px``: RMS corner error in crop pixels)."""
    mse = F.mse_loss(corners.float() / size, gt / size)
    flag = has_mask.float()
    if bool(has_mask.any()):
        bce_px = F.binary_cross_entropy_with_logits(logits.float(), mask, reduction="none").mean(dim=(1, 2))
        bce = (bce_px * flag).sum() / corners.shape[0]
    else:
        bce = logits.sum() * 0.0  # keeps every parameter in the graph
    loss = mse + mask_weight * bce
    parts = {"loss": float(loss.detach()), "corner_px": float(mse.detach().sqrt() * size), "bce": float(bce.detach())}
    return loss, parts
