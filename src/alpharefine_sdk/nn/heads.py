"""Prediction heads: the corner head with soft-argmax and the coarse-to-fine mask head."""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fusion import conv_bn_relu


def flatten_from(x: Tensor, start: int) -> Tensor:
    """``x.flatten(start)`` with every size but the batch as a Python int, so an ONNX export
    reshapes to a constant shape (a dynamic batch stays ``-1``) instead of a Shape/Gather chain."""
    dims = [int(d) for d in x.shape[1:]]
    return x.reshape(-1, *dims[: start - 1], math.prod(dims[start - 1 :]))


def cell_coordinates(h: int, w: int, stride: int, device: torch.device, offset: float = 0.0) -> Tensor:
    """``[h*w, 2]`` float32 ``(x, y)`` of every cell of an ``h x w`` map in row-major order: cell
    ``(row, col)`` at ``(stride*col + offset, stride*row + offset)``. Built from Python numbers, so
    an export folds it to a constant."""
    idx = torch.arange(h * w, device=device, dtype=torch.float32)
    rows = torch.floor(idx / w)
    xy = torch.stack([(idx - rows * w) * stride, rows * stride], dim=1)
    return xy + offset if offset else xy


def soft_argmax(scores: Tensor, stride: int = 16, offset: float = 0.0) -> Tensor:
    """Expected ``(x, y)`` of a softmax over each of the ``K`` maps of ``[B, K, H, W]`` scores:
    ``[B, 2K]`` as ``(x_1, y_1, x_2, y_2, ...)``.

    Cell ``(row, col)`` sits at ``(stride*col, stride*row)`` (the cell's top-left, no half-cell
    offset, as the released weights expect), shifted by ``offset`` px on both axes (a finer map
    read at the coarse map's positions, :class:`FineCornerHead`). Computed in float32 whatever the
    input dtype; all maps in one softmax and one matrix product.
    """
    h, w = int(scores.shape[-2]), int(scores.shape[-1])
    with torch.autocast(scores.device.type, enabled=False):
        p = torch.softmax(flatten_from(scores, 2).float(), dim=-1)  # [B, K, H*W]
        return flatten_from(p @ cell_coordinates(h, w, stride, scores.device, offset), 1)


class CornerHead(nn.Module):
    """Two towers (top-left, bottom-right) of conv-BN-ReLU blocks and a 1x1 score conv each."""

    def __init__(self, in_ch: int = 64, channels: Sequence[int] = (256, 128, 64, 32), stride: int = 16) -> None:
        super().__init__()
        self.stride = stride
        for tower in ("tl", "br"):
            prev = in_ch
            for i, ch in enumerate(channels, start=1):
                setattr(self, f"conv{i}_{tower}", conv_bn_relu(prev, ch, 3))
                prev = ch
            setattr(self, f"conv{len(channels) + 1}_{tower}", nn.Conv2d(prev, 1, 1))
        self.depth = len(channels) + 1

    offset = 0.0  # px added to every cell position of the maps the corners are read from

    def _tower(self, x: Tensor, tower: str) -> Tuple[Tensor, Tensor]:
        """One tower's last hidden feature and its logits ``[B, 1, H, W]``."""
        for i in range(1, self.depth):
            x = getattr(self, f"conv{i}_{tower}")(x)
        return x, getattr(self, f"conv{self.depth}_{tower}")(x)

    def score_maps(self, x: Tensor) -> Tensor:
        """Corner logits ``[B, 2, H, W]``: channel 0 top-left, channel 1 bottom-right."""
        return torch.cat([self._tower(x, tower)[1] for tower in ("tl", "br")], dim=1)

    def score_pyramid(self, x: Tensor, *taps: Tensor) -> Tuple[Tensor, Tensor]:
        """``(logits at the fusion's stride, logits the corners are read from)``; the same map here.
        ``taps``: the finer backbone features a finer head reads (none for this one)."""
        s = self.score_maps(x)
        return s, s

    def corners_from_maps(self, s: Tensor) -> Tensor:
        """Corners ``[B, 4]`` from the logits the corners are read from."""
        return soft_argmax(s, self.stride, self.offset)

    def forward(self, x: Tensor) -> Tensor:
        """Corners ``[B, 4] = (x_tl, y_tl, x_br, y_br)`` in crop pixels (float32)."""
        return self.corners_from_maps(self.score_maps(x))


class FineCornerHead(CornerHead):
    """:class:`CornerHead` whose corner maps are refined at twice its resolution with a finer
    backbone feature (stride 8): per tower, the coarse logits upsampled (nearest) plus a small conv
    branch over the tower's last hidden feature (upsampled) and the projected finer feature.

    A coarse cell ``c`` becomes four fine cells read at ``16c -+ 4`` (``stride`` 8, ``offset`` -4),
    so nearest-upsampled coarse logits give exactly the coarse head's corners; the branch's last conv
    starts at zero, so a net initialised from a :class:`CornerHead` model predicts what that model
    did until it trains. Soft-argmax over 8 px cells instead of 16 px ones is the point: the coarse
    map cannot place a corner finer than its cells' spread allows.
    """

    def __init__(
        self,
        in_ch: int = 64,
        channels: Sequence[int] = (128, 64, 64, 32),
        stride: int = 16,
        fine_ch: int = 32,
        proj: int = 16,
        hidden: int = 32,
    ) -> None:
        super().__init__(in_ch, channels, stride)
        self.stride = stride // 2
        self.offset = -stride / 4
        self.fine_proj = conv_bn_relu(fine_ch, proj, 1)
        for tower in ("tl", "br"):
            last = nn.Conv2d(hidden, 1, 3, 1, 1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            branch = nn.Sequential(nn.Conv2d(channels[-1] + proj, hidden, 3, 1, 1), nn.ReLU(inplace=True), last)
            setattr(self, f"fine_{tower}", branch)

    def score_maps(self, x: Tensor, fine: Tensor) -> Tensor:  # type: ignore[override]
        """Fine corner logits ``[B, 2, 2H, 2W]`` (the map the corners are read from)."""
        return self.score_pyramid(x, fine)[1]

    def score_pyramid(self, x: Tensor, *taps: Tensor) -> Tuple[Tensor, Tensor]:
        """``(coarse logits [B, 2, H, W], fine logits [B, 2, 2H, 2W])``; ``taps``: the stride-8 feature."""
        (fine,) = taps
        f = self.fine_proj(fine)
        coarse, maps = [], []
        for tower in ("tl", "br"):
            hidden, logits = self._tower(x, tower)
            up = F.interpolate(torch.cat([hidden, logits], dim=1), scale_factor=2.0, mode="nearest")
            delta = getattr(self, f"fine_{tower}")(torch.cat([up[:, :-1], f], dim=1))
            coarse.append(logits)
            maps.append(up[:, -1:] + delta)
        return torch.cat(coarse, dim=1), torch.cat(maps, dim=1)

    def forward(self, x: Tensor, fine: Tensor) -> Tensor:  # type: ignore[override]
        """Corners ``[B, 4]`` in crop pixels (float32)."""
        return self.corners_from_maps(self.score_maps(x, fine))


def _double_conv(in_ch: int, mid: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, mid, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, out, 3, 1, 1), nn.ReLU(inplace=True)
    )


class MaskHead(nn.Module):
    """Coarse-to-fine decoder: fusion feature at stride 16, adapted backbone taps at 8, 4 and 2.

    ``widths`` are the decoder widths of the three levels from coarse to fine (original: 32/16/4);
    ``tap_channels`` the channels of the adapted taps (original: 512/256/64 for layer2/layer1/conv1).
    """

    def __init__(
        self,
        fusion_ch: int = 64,
        tap_channels: Sequence[int] = (512, 256, 64),
        widths: Sequence[int] = (32, 16, 4),
        hidden: Sequence[int] = (128, 64, 16),
    ) -> None:
        super().__init__()
        w2, w1, w0 = widths
        self.v2 = _double_conv(tap_channels[0], hidden[0], w2)
        self.v1 = _double_conv(tap_channels[1], hidden[1], w1)
        self.v0 = _double_conv(tap_channels[2], hidden[2], w0)
        self.h2 = _double_conv(fusion_ch, w2, w2)
        self.h1 = _double_conv(w1, w1, w1)
        self.h0 = _double_conv(w0, w0, w0)
        self.post0 = nn.Conv2d(w2, w1, 3, 1, 1)
        self.post1 = nn.Conv2d(w1, w0, 3, 1, 1)
        self.post2 = nn.Conv2d(w0, 1, 3, 1, 1)

    def logits(self, fusion: Tensor, a2: Tensor, a1: Tensor, a0: Tensor) -> Tensor:
        """Mask logits at the resolution of ``a0`` (``[B, 1, 128, 128]`` for a 256 crop)."""
        m = self.post0(_up(self.h2(fusion), a2) + self.v2(a2))
        m = self.post1(_up(self.h1(m), a1) + self.v1(a1))
        return self.post2(_up(self.h0(m), a0) + self.v0(a0))

    def forward(self, fusion: Tensor, a2: Tensor, a1: Tensor, a0: Tensor, out_size: int = 256) -> Tensor:
        """Mask probabilities ``[B, 1, out_size, out_size]`` (logits upsampled, then sigmoid)."""
        return mask_probabilities(self.logits(fusion, a2, a1, a0), out_size)[:, None]


def upsample_mask_logits(logits: Tensor, out_size: int) -> Tensor:
    """Mask logits ``[B, 1, h, w]`` -> ``[B, out_size, out_size]`` (bilinear, half-pixel centres)."""
    return F.interpolate(logits, size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]


def mask_probabilities(logits: Tensor, out_size: int) -> Tensor:
    """Mask probabilities ``[B, out_size, out_size]``: the logits upsampled, then the sigmoid."""
    return torch.sigmoid(upsample_mask_logits(logits, out_size))


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def feature_adapters(in_channels: Sequence[int], out_channels: Sequence[int]) -> nn.ModuleList:
    """1x1 conv-BN-ReLU adapters for the low-level search taps (original: conv1, layer1, layer2)."""
    return nn.ModuleList(conv_bn_relu(i, o, 1) for i, o in zip(in_channels, out_channels))


def _pool_weights(n: int, grid: int, like: Tensor) -> Tensor:
    """``[grid, n]`` averaging weights of adaptive pooling (cell i spans floor(i*n/g)..ceil((i+1)*n/g))."""
    w = torch.zeros(grid, n, dtype=like.dtype, device=like.device)
    for i in range(grid):
        a, b = (i * n) // grid, -((-(i + 1) * n) // grid)
        w[i, a:b] = 1.0 / (b - a)
    return w


def adaptive_mean(x: Tensor, grid: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, grid)``, also for sizes it does not divide (12 -> 8) in ONNX.

    The exporters refuse adaptive pooling whose output does not divide the input; there the same
    windows are applied as two constant matrix products.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % grid == 0 and w % grid == 0:
        return F.adaptive_avg_pool2d(x, grid)
    return _pool_weights(h, grid, x) @ x @ _pool_weights(w, grid, x).T


class IoUHead(nn.Module):
    """Learned confidence: predicts the IoU with the target of the refined box and of the input box.

    Inputs: the fusion feature ``[B, C, H, W]``, the corner logits ``[B, 2, H, W]``, the refined and
    the input corners ``[B, 4]`` in crop units (pixels / S). Features are pooled to a fixed
    ``grid x grid`` map so the head works for any input size. Output: IoU logits ``[B, 2]``
    (column 0 the refined box, column 1 the input box); ``sigmoid`` gives the IoU estimates.
    The head reads detached features, so training it never changes the boxes.
    """

    def __init__(self, in_ch: int = 64, mid: int = 32, grid: int = 8, hidden: int = 128) -> None:
        super().__init__()
        self.grid = grid
        self.conv = conv_bn_relu(in_ch + 2, mid, 3)
        self.fc1 = nn.Linear(mid * grid * grid + 4 + 4 + 2, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: Tensor, score_maps: Tensor, corners: Tensor, input_corners: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            p = torch.softmax(flatten_from(score_maps.float(), 2), dim=-1)
            peak = p.max(dim=-1).values  # how sure each corner map is
        feat = self.conv(torch.cat([x, score_maps.to(x.dtype)], dim=1))
        feat = adaptive_mean(feat, self.grid).flatten(1)
        z = torch.cat([feat.float(), corners.float(), input_corners.float(), peak], dim=1)
        z = F.relu(self.fc1(z.to(self.fc1.weight.dtype)))
        z = F.relu(self.fc2(z))
        return self.out(z).float()


def box_sample_weights(lo: Tensor, hi: Tensor, cells: int, grid: int, context: float) -> Tensor:
    """Bilinear weights ``[..., grid, cells]`` that sample ``grid`` evenly spaced points across
    ``[lo, hi]`` (crop units, any shape ``[...]``) widened ``context`` times around its middle, on an
    axis of ``cells`` feature cells (cell ``i`` centred at ``(i + 0.5) / cells``); points off the map
    get zero weight. Two such matrices sample a box as ``Wy @ F @ Wx^T`` (exact bilinear RoI-align,
    matrix products only, so every exporter takes it)."""
    mid, half = (lo + hi) / 2, (hi - lo).clamp(min=0) * (context / 2)
    t = (torch.arange(grid, device=lo.device, dtype=torch.float32) + 0.5) / grid * 2 - 1  # [-1, 1]
    pos = (mid[..., None] + half[..., None] * t) * cells - 0.5  # [..., G] in cell indices
    idx = torch.arange(cells, device=lo.device, dtype=torch.float32)
    return (1 - (pos[..., None] - idx).abs()).clamp(min=0)


def sample_box(feat: Tensor, box: Tensor, grid: int, context: float) -> Tensor:
    """``grid x grid`` bilinear samples ``[B, C, grid, grid]`` of ``feat`` ``[B, C, H, W]`` over each
    box ``[B, 4]`` (crop units, ``x1, y1, x2, y2``) widened ``context`` times (see
    :func:`box_sample_weights`)."""
    return sample_boxes(feat, box[:, None], grid, context)[:, 0]


def sample_boxes(feat: Tensor, boxes: Tensor, grid: int, context: float) -> Tensor:
    """:func:`sample_box` for ``K`` boxes per feature map at once: ``boxes`` ``[B, K, 4]`` ->
    ``[B, K, C, grid, grid]`` (one pair of batched matrix products for all of them)."""
    h, w = int(feat.shape[-2]), int(feat.shape[-1])
    if h == w:  # both axes in one call: [B, K, 2, G, H], axis 0 = x, 1 = y
        wxy = box_sample_weights(boxes[..., :2], boxes[..., 2:], h, grid, context).to(feat.dtype)
        wx, wy = wxy[:, :, 0], wxy[:, :, 1]
    else:
        wy = box_sample_weights(boxes[..., 1], boxes[..., 3], h, grid, context).to(feat.dtype)  # [B, K, G, H]
        wx = box_sample_weights(boxes[..., 0], boxes[..., 2], w, grid, context).to(feat.dtype)  # [B, K, G, W]
    return wy[:, :, None] @ feat[:, None] @ wx[:, :, None].transpose(-1, -2)


class AlignedIoUHead(IoUHead):
    """:class:`IoUHead` plus features sampled inside and around each of the two boxes (IoU-Net's
    idea): ``grid x grid`` bilinear samples of the box, widened ``context`` times, from the fusion
    feature and from a finer backbone feature (stride 8). Pooling the whole map cannot tell a box
    from one a few pixels off; these samples move with the box edges. The box branch adds to the
    whole-map head's logits and starts at zero, so a net initialised from an ``IoUHead`` model
    predicts exactly what that model did until it trains.
    """

    def __init__(
        self, in_ch: int = 64, fine_ch: int = 32, mid: int = 16, box_grid: int = 5, context: float = 1.25
    ) -> None:
        super().__init__(in_ch)
        self.box_grid, self.context = box_grid, context
        self.box_coarse = conv_bn_relu(in_ch, mid, 1)
        self.box_fine = conv_bn_relu(fine_ch, mid, 1)
        self.box_fc = nn.Linear(2 * mid * box_grid * box_grid + 4, 128)
        self.box_mix = nn.Linear(3 * 128, 128)
        self.box_out = nn.Linear(128, 2)
        nn.init.zeros_(self.box_out.weight)
        nn.init.zeros_(self.box_out.bias)

    def _box_layer(self, coarse: Tensor, fine: Tensor, boxes: Tensor) -> Tensor:
        """The box branch's first layer before its ReLU, ``[B, K, 128]``, for ``boxes`` ``[B, K, 4]``
        (all K sampled in one pass)."""
        g = self.box_grid
        zc = flatten_from(sample_boxes(coarse, boxes, g, self.context), 2).float()
        zf = flatten_from(sample_boxes(fine, boxes, g, self.context), 2).float()
        z = torch.cat([zc, zf, boxes], dim=2)
        return self.box_fc(z.to(self.box_fc.weight.dtype))

    def _box_logits(self, layer: Tensor) -> Tensor:
        """IoU logits ``[B, 2]`` from the first layer of the refined (0) and the input (1) box."""
        both = F.relu(layer)
        a, b = both[:, 0], both[:, 1]
        z = F.relu(self.box_mix(torch.cat([a, b, a - b], dim=1)))
        return self.box_out(z).float()

    def forward(  # type: ignore[override]
        self, x: Tensor, score_maps: Tensor, corners: Tensor, input_corners: Tensor, fine: Tensor
    ) -> Tensor:
        base = super().forward(x, score_maps, corners, input_corners)
        boxes = torch.stack([corners.float(), input_corners.float()], dim=1)
        return base + self._box_logits(self._box_layer(self.box_coarse(x), self.box_fine(fine), boxes))


def edge_strips(boxes: Tensor, band: float) -> Tensor:
    """The four edge strips of each box ``[B, K, 4]`` (crop units, ``x1, y1, x2, y2``) ->
    ``[B, 4K, 4]``: per box left, top, right, bottom, each the edge widened ``band`` x the box's side
    to both sides and spanning the box along the edge."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    dx, dy = (x2 - x1) * band, (y2 - y1) * band
    strips = [
        torch.stack(s, dim=-1)
        for s in (
            (x1 - dx, y1, x1 + dx, y2),
            (x1, y1 - dy, x2, y1 + dy),
            (x2 - dx, y1, x2 + dx, y2),
            (x1, y2 - dy, x2, y2 + dy),
        )
    ]
    return torch.stack(strips, dim=2).reshape(boxes.shape[0], -1, 4)


class EdgeIoUHead(AlignedIoUHead):
    """:class:`AlignedIoUHead` plus samples along each box edge: a ``strip_grid x strip_grid`` grid
    over a band of ``band`` x the side on both sides of each of the four edges, on the stride-8
    feature and on a stride-4 backbone feature. A box a few pixels off the target moves its edges
    across the object's boundary, which these samples see at twice the resolution of the box grid.
    The edge branch adds to the box branch's first layer and starts at zero, so a net initialised
    from an ``AlignedIoUHead`` model predicts exactly what that model did until it trains.
    """

    def __init__(
        self,
        in_ch: int = 64,
        fine_ch: int = 32,
        edge_ch: int = 24,
        mid: int = 16,
        edge_mid: int = 8,
        strip_grid: int = 4,
        band: float = 0.15,
    ) -> None:
        super().__init__(in_ch, fine_ch, mid)
        self.strip_grid, self.band = strip_grid, band
        self.edge_proj = conv_bn_relu(edge_ch, edge_mid, 1)
        self.edge_fc = nn.Linear(4 * (mid + edge_mid) * strip_grid * strip_grid, 128)
        nn.init.zeros_(self.edge_fc.weight)
        nn.init.zeros_(self.edge_fc.bias)

    def _edge_layer(self, fine: Tensor, edge: Tensor, boxes: Tensor) -> Tensor:
        """The edge branch's contribution to the box branch's first layer, ``[B, K, 128]``."""
        b, k, g = boxes.shape[0], int(boxes.shape[1]), self.strip_grid
        strips = edge_strips(boxes, self.band)
        zf = flatten_from(sample_boxes(fine, strips, g, 1.0), 2)
        ze = flatten_from(sample_boxes(edge, strips, g, 1.0), 2)
        z = torch.cat([zf, ze], dim=2).float().reshape(b, k, -1)
        return self.edge_fc(z.to(self.edge_fc.weight.dtype))

    def forward(  # type: ignore[override]
        self, x: Tensor, score_maps: Tensor, corners: Tensor, input_corners: Tensor, fine: Tensor, edge: Tensor
    ) -> Tensor:
        base = IoUHead.forward(self, x, score_maps, corners, input_corners)
        boxes = torch.stack([corners.float(), input_corners.float()], dim=1)
        fine = self.box_fine(fine)
        layer = self._box_layer(self.box_coarse(x), fine, boxes) + self._edge_layer(fine, self.edge_proj(edge), boxes)
        return base + self._box_logits(layer)
