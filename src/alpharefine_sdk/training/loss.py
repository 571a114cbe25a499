"""Training forward and loss.

Corners (crop units, pixels / S): ``mse_weight * MSE + l1_weight * L1 + giou_weight * (1 - GIoU)``,
masks: ``mask_weight * BCE``, and, for nets with an IoU head, ``iou_weight * BCE(predicted IoU,
true IoU)`` for the refined and the input box, plus ``rank_weight *`` a logistic loss on which of the
two boxes the head ranks higher (the default gate's choice), each pair weighted by what a wrong choice
costs (the IoU difference). Scale of the paper's recipe: ``MSE(raw pixels) +
1000 * BCE``; with corners divided by S = 256 the MSE shrinks by S^2, so ``mask_weight = 1000 /
256^2`` with the other weights at 0 is the paper's loss. The mask term is the per-sample mean BCE
over pixels, zero for box-only samples, averaged over the whole batch, so splitting a batch over
processes gives the same gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.arnet import RefinerNet
from ..nn.heads import upsample_mask_logits


class TrainForward(nn.Module):
    """Wraps a :class:`RefinerNet` for training: corners, full-size mask logits and (for nets with an
    IoU head) IoU logits in one pass (a module so DistributedDataParallel can hook it)."""

    def __init__(self, net: RefinerNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, template: Tensor, search: Tensor, input_corners: Optional[Tensor] = None
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        net = self.net
        wants_iou = net.iou_head is not None and input_corners is not None
        out = net.search_outputs(search, net.template_kernel(template), True, input_corners if wants_iou else None)
        return out.corners, upsample_mask_logits(out.mask_logits.float(), search.shape[-1]), out.iou


@dataclass(frozen=True)
class LossWeights:
    mse: float = 1.0
    l1: float = 0.0
    giou: float = 0.0
    mask: float = 1000.0 / 256**2
    iou: float = 0.0
    rank: float = 0.0


RANK_TEMPERATURE = 0.02  # IoU units: estimates 0.02 apart give odds e : 1 in the ranking loss


def rank_accuracy(est: Tensor, target: Tensor) -> float:
    """Share of (refined, input) pairs ``[B, 2]`` whose better box the estimates rate higher, each pair
    weighted by the IoU a wrong choice loses (what the gate's choice is worth)."""
    cost = (target[:, 0] - target[:, 1]).abs()
    right = ((est[:, 0] > est[:, 1]) == (target[:, 0] > target[:, 1])).float()
    return float((cost * right).sum() / cost.sum().clamp(min=1e-6))


def box_iou_giou(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """IoU and generalised IoU of ``[B, 4]`` corner boxes ``(x1, y1, x2, y2)`` (float32)."""
    a, b = a.float(), b.float()
    wa, ha = (a[:, 2] - a[:, 0]).clamp(min=0), (a[:, 3] - a[:, 1]).clamp(min=0)
    wb, hb = (b[:, 2] - b[:, 0]).clamp(min=0), (b[:, 3] - b[:, 1]).clamp(min=0)
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = wa * ha + wb * hb - inter
    iou = inter / union.clamp(min=1e-9)
    cw = torch.maximum(a[:, 2], b[:, 2]) - torch.minimum(a[:, 0], b[:, 0])
    ch = torch.maximum(a[:, 3], b[:, 3]) - torch.minimum(a[:, 1], b[:, 1])
    hull = (cw * ch).clamp(min=1e-9)
    return iou, iou - (hull - union) / hull


def refiner_loss(
    corners: Tensor,
    logits: Tensor,
    gt: Tensor,
    mask: Tensor,
    has_mask: Tensor,
    *,
    size: int,
    weights: LossWeights,
    iou_logits: Optional[Tensor] = None,
    input_corners: Optional[Tensor] = None,
) -> Tuple[Tensor, Dict[str, float]]:
    """Total loss and its parts (``corner_px``: RMS corner error in crop pixels)."""
    c, g = corners.float() / size, gt.float() / size
    mse = F.mse_loss(c, g)
    loss = weights.mse * mse
    iou, giou = box_iou_giou(corners, gt)
    if weights.l1:
        loss = loss + weights.l1 * F.l1_loss(c, g)
    if weights.giou:
        loss = loss + weights.giou * (1 - giou).mean()
    flag = has_mask.float()
    if bool(has_mask.any()):
        bce_px = F.binary_cross_entropy_with_logits(logits.float(), mask, reduction="none").mean(dim=(1, 2))
        bce = (bce_px * flag).sum() / corners.shape[0]
    else:
        bce = logits.sum() * 0.0  # keeps every parameter in the graph
    loss = loss + weights.mask * bce
    parts = {
        "corner_px": float(mse.detach().sqrt() * size),
        "bce": float(bce.detach()),
        "iou": float(iou.detach().mean()),
    }
    if iou_logits is not None and input_corners is not None:
        with torch.no_grad():
            target = torch.stack([iou.detach(), box_iou_giou(input_corners, gt)[0]], dim=1)
        q = F.binary_cross_entropy_with_logits(iou_logits.float(), target)
        loss = loss + weights.iou * q
        est = torch.sigmoid(iou_logits.float())
        parts["iou_err"] = float((est.detach() - target).abs().mean())
        if weights.rank:
            cost = (target[:, 0] - target[:, 1]).abs()
            better = (target[:, 0] > target[:, 1]).float()
            odds = (est[:, 0] - est[:, 1]) / RANK_TEMPERATURE
            per = F.binary_cross_entropy_with_logits(odds, better, reduction="none")
            rank = (cost * per).sum() / cost.sum().clamp(min=1e-6)
            loss = loss + weights.rank * rank
            parts["rank_acc"] = rank_accuracy(est.detach(), target)
    parts["loss"] = float(loss.detach())
    return loss, parts
