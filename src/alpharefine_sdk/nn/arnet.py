"""Assembled refiner networks (the architecture table is :mod:`alpharefine_sdk.nn.registry`).

A refiner net has two entry points:
``template_kernel(images)`` -> the cached template kernel, and
``search(images, kernel, with_mask)`` -> corners (and the crop-space mask).
Everything else (crops, boxes, masks in the frame) lives outside the network.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .fusion import CorrelationNeck, central_cells
from .heads import CornerHead, IoUHead, MaskHead, feature_adapters, mask_probabilities
from .resnet import ResNet34Trunk


class SearchOutputs(NamedTuple):
    """Everything one search pass computes.

    ``scores``: corner logits ``[B, 2, h, w]`` (top-left, bottom-right; the map the corners are read
    from, at twice the fusion's resolution for a ``FineCornerHead``); ``corners``: ``[B, 4]``
    crop pixels, float32 (their soft-argmax); ``mask_logits``: ``[B, 1, S/2, S/2]`` at the
    decoder's resolution, or ``None``; ``iou``: IoU logits ``[B, 2]`` (refined box, input box), or
    ``None``.
    """

    scores: Tensor
    corners: Tensor
    mask_logits: Optional[Tensor]
    iou: Optional[Tensor]


class RefinerNet(nn.Module):
    """Backbone + correlation neck + corner head + mask head (+ adapters for the mask taps).

    Args:
        feature_extractor: module ``(x, taps) -> {tap: feature}``.
        mask_taps: backbone taps feeding the mask head, finest first (``conv1, layer1, layer2``).
        deep_tap: the stride-16 tap used for the template kernel and correlation.
        template_cells: side of the central template window (8 of 16).
    """

    def __init__(
        self,
        feature_extractor: nn.Module,
        neck: CorrelationNeck,
        corner_head: CornerHead,
        mask_head: MaskHead,
        feat_adjust: nn.ModuleList,
        *,
        mask_taps: Sequence[str],
        deep_tap: str,
        template_cells: int = 8,
        input_size: int = 256,
        iou_head: Optional[IoUHead] = None,
        iou_tap: Union[str, Sequence[str], None] = None,
        corner_tap: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.neck = neck
        self.corner_head = corner_head
        self.mask_head = mask_head
        self.feat_adjust = feat_adjust
        self.mask_taps = tuple(mask_taps)
        self.deep_tap = deep_tap
        self.template_cells = template_cells
        self.input_size = input_size
        self.iou_head = iou_head
        self.iou_tap = iou_tap  # finer backbone taps the IoU head also reads, in order (AlignedIoUHead)
        self.corner_tap = corner_tap  # the finer backbone tap a FineCornerHead reads

    @property
    def corner_taps(self) -> Tuple[str, ...]:
        """The backbone taps the corner head reads after the fusion feature (none or one)."""
        return () if self.corner_tap is None else (self.corner_tap,)

    @property
    def iou_taps(self) -> Tuple[str, ...]:
        """The backbone taps the IoU head reads after its usual inputs (none, one or several)."""
        if self.iou_tap is None:
            return ()
        return (self.iou_tap,) if isinstance(self.iou_tap, str) else tuple(self.iou_tap)

    def template_kernel(self, images: Tensor) -> Tensor:
        """Template kernel ``[B, C, cells, cells]`` from normalised template crops ``[B, 3, S, S]``."""
        feat = self.feature_extractor(images, (self.deep_tap,))[self.deep_tap]
        return central_cells(feat, self.template_cells).contiguous()

    def fusion(self, kernel: Tensor, deep: Tensor) -> Tensor:
        """Fusion feature from the template kernel and the search deep feature."""
        return self.neck(kernel, deep)

    def search_outputs(
        self, images: Tensor, kernel: Tensor, with_mask: bool = False, input_corners: Optional[Tensor] = None
    ) -> SearchOutputs:
        """The one search forward pass (inference, ONNX export and training all run this).

        The backbone runs once for every output. ``input_corners`` ``[B, 4]`` (the input box in crop
        pixels) asks for the IoU logits and needs a net with an ``iou_head``.
        """
        taps = (*self.mask_taps, self.deep_tap) if with_mask else (self.deep_tap,)
        iou_taps = self.iou_taps
        if input_corners is not None:
            taps = (*(t for t in iou_taps if t not in taps), *taps)
        taps = (*(t for t in self.corner_taps if t not in taps), *taps)
        feats = self.feature_extractor(images, taps)
        x = self.fusion(kernel, feats[self.deep_tap])
        coarse, scores = self.corner_head.score_pyramid(x, *(feats[t] for t in self.corner_taps))
        corners = self.corner_head.corners_from_maps(scores)
        iou = None
        if input_corners is not None:
            if self.iou_head is None:
                raise ValueError("this architecture has no IoU head; call search() without input corners")
            # the IoU head reads detached features: training it never moves the boxes
            size = float(images.shape[-1])
            extra = tuple(feats[t].detach() for t in iou_taps)
            iou = self.iou_head(
                x.detach(), coarse.detach(), corners.detach().float() / size, input_corners.float() / size, *extra
            )
        mask_logits = None
        if with_mask:
            a0, a1, a2 = [adj(feats[t]) for adj, t in zip(self.feat_adjust, self.mask_taps)]
            mask_logits = self.mask_head.logits(x, a2, a1, a0)
        return SearchOutputs(scores, corners, mask_logits, iou)

    def search(self, images: Tensor, kernel: Tensor, with_mask: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """Corners ``[B, 4]`` (crop pixels, float32) and, if asked, mask probabilities ``[B, S, S]``."""
        out = self.search_outputs(images, kernel, with_mask)
        mask = None if out.mask_logits is None else mask_probabilities(out.mask_logits, images.shape[-1])
        return out.corners, mask

    def search_scored(
        self, images: Tensor, kernel: Tensor, input_corners: Tensor, with_mask: bool = False
    ) -> Tuple[Tensor, Optional[Tensor], Tensor]:
        """Like :meth:`search`, plus the predicted IoU ``[B, 2]`` of the refined and of the input box.

        ``input_corners`` ``[B, 4]``: the input box in crop pixels. Needs a net with an ``iou_head``.
        """
        out = self.search_outputs(images, kernel, with_mask, input_corners)
        mask = None if out.mask_logits is None else mask_probabilities(out.mask_logits, images.shape[-1])
        return out.corners, mask, torch.sigmoid(out.iou)

    def forward(self, template: Tensor, search: Tensor, with_mask: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
        """Training forward: template crops and search crops, paired by index."""
        return self.search(search, self.template_kernel(template), with_mask)


def build_ar34_cm() -> RefinerNet:
    """The original "AR34 c+m" (SEcmnet): ResNet-34 to layer3, corner and mask heads."""
    return RefinerNet(
        ResNet34Trunk(),
        CorrelationNeck(64, 128, 64),
        CornerHead(64, (256, 128, 64, 32), stride=16),
        MaskHead(64, (512, 256, 64), (32, 16, 4), (128, 64, 16)),
        feature_adapters((64, 64, 128), (64, 256, 512)),
        mask_taps=("conv1", "layer1", "layer2"),
        deep_tap="layer3",
    )
