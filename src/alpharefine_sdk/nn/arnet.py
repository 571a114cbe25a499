"""Assembled refiner networks and the architecture registry.

A refiner net has two entry points:
``template_kernel(images)`` -> the cached template kernel, and
``search(images, kernel, with_mask)`` -> corners (and the crop-space mask).
Everything else (crops, boxes, masks in the frame) lives outside the network.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

from torch import Tensor, nn

from .fusion import CorrelationNeck, central_cells
from .heads import CornerHead, MaskHead, feature_adapters
from .resnet import ResNet34Trunk


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

    def template_kernel(self, images: Tensor) -> Tensor:
        """Template kernel ``[B, C, cells, cells]`` from normalised template crops ``[B, 3, S, S]``."""
        feat = self.feature_extractor(images, (self.deep_tap,))[self.deep_tap]
        return central_cells(feat, self.template_cells).contiguous()

    def fusion(self, kernel: Tensor, deep: Tensor) -> Tensor:
        """Fusion feature from the template kernel and the search deep feature."""
        return self.neck(kernel, deep)

    def search(self, images: Tensor, kernel: Tensor, with_mask: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """Corners ``[B, 4]`` (crop pixels, float32) and, if asked, mask probabilities ``[B, S, S]``.

        The backbone runs once for both outputs.
        """
        taps = (*self.mask_taps, self.deep_tap) if with_mask else (self.deep_tap,)
        feats = self.feature_extractor(images, taps)
        x = self.fusion(kernel, feats[self.deep_tap])
        corners = self.corner_head(x)
        if not with_mask:
            return corners, None
        adapted = [adj(feats[t]) for adj, t in zip(self.feat_adjust, self.mask_taps)]
        a0, a1, a2 = adapted
        mask = self.mask_head(x, a2, a1, a0, out_size=images.shape[-1])
        return corners, mask[:, 0]

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


ARCHITECTURES: Dict[str, Callable[[], RefinerNet]] = {"ar34_cm": build_ar34_cm}


def register_architecture(name: str, builder: Callable[[], RefinerNet]) -> None:
    """Make ``name`` buildable by :func:`build_net` (used for new backbones)."""
    ARCHITECTURES[name] = builder


def build_net(arch: str) -> RefinerNet:
    """Build an untrained network of the named architecture."""
    _ensure_builtin_architectures()
    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}. "
            "Upgrade alpharefine-sdk if these weights come from a newer release."
        ) from None
    return builder()


def _ensure_builtin_architectures() -> None:
    # Optional architectures register themselves on import.
    try:
        from . import mobilenet  # noqa: F401
    except ImportError:
        pass
