"""Fusion neck: template kernel extraction, pixel-wise correlation, post-correlation block and
squeeze-excitation channel attention."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .correlation import pixelwise_correlation

CorrelationFn = Callable[[Tensor, Tensor], Tensor]


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int = 1) -> nn.Sequential:
    """Conv (with bias) -> BatchNorm -> ReLU, indices 0/1/2 as in the original state dict."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, 1, kernel_size // 2, bias=True),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def central_cells(feat: Tensor, cells: int = 8) -> Tensor:
    """The central ``cells x cells`` window of a template feature map (rows/cols 4..11 of 16)."""
    h, w = feat.shape[-2:]
    top, left = (h - cells) // 2, (w - cells) // 2
    return feat[..., top : top + cells, left : left + cells]


class ChannelAttention(nn.Module):
    """Squeeze-excitation: global mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        z = x.mean(dim=(2, 3), keepdim=True)
        z = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
        return x * z


class CorrelationNeck(nn.Module):
    """Correlation of the template kernel with the search map, then 1x1 block and attention.

    ``correlation`` is swappable (the fused GPU kernel replaces the reference in the fast path).
    """

    def __init__(self, corr_channels: int = 64, hidden: int = 128, out_channels: int = 64) -> None:
        super().__init__()
        self.post_corr = nn.Sequential(
            *conv_bn_relu(corr_channels, hidden),
            *conv_bn_relu(hidden, hidden),
            *conv_bn_relu(hidden, out_channels),
        )
        self.channel_attention = ChannelAttention(out_channels)
        self.correlation: CorrelationFn = pixelwise_correlation

    def forward(self, kernel: Tensor, search: Tensor) -> Tensor:
        x = self.correlation(kernel, search)
        return self.channel_attention(self.post_corr(x))
