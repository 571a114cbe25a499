"""MobileNetV2 trunk (torchvision parameter layout ``features.N...``) and the "mnv2_cm" refiner.

Only ``features[:14]`` is built: for a 256 crop it ends with 96 channels at stride 16 (16x16),
the same grid as the original's ResNet-34 layer3. The light mask head is fed by earlier stages:
``features[1]`` (16 ch, stride 2), ``features[3]`` (24 ch, stride 4), ``features[6]`` (32 ch,
stride 8). Keys match ``torchvision.models.mobilenet_v2().features`` so ImageNet weights in that
layout load with a plain prefix rename (see :func:`load_imagenet_features`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Sequence, Union

from torch import Tensor, nn

from .arnet import RefinerNet
from .fusion import CorrelationNeck
from .heads import AlignedIoUHead, CornerHead, EdgeIoUHead, FineCornerHead, IoUHead, MaskHead, feature_adapters

# (expansion t, output channels c, repeats n, first stride s): torchvision's table, cut after the
# 96-channel stage (features[14:] would be stride 32 and are never used).
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
# tap name -> index of the features block it is taken after
TAPS = {"f1": 1, "f3": 3, "f6": 6, "f13": 13}
TAP_CHANNELS = {"f1": 16, "f3": 24, "f6": 32, "f13": 96}


def _conv_bn_act(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BN -> ReLU6; indices 0/1/2 as torchvision's ``Conv2dNormActivation``."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 -> project 1x1 (linear), residual when the shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_ch * expand
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers = [] if expand == 1 else [_conv_bn_act(in_ch, hidden, 1)]
        layers += [
            _conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Trunk(nn.Module):
    """``features[0..13]`` of MobileNetV2; ``forward(x, taps)`` returns the requested taps."""

    tap_channels = TAP_CHANNELS

    def __init__(self) -> None:
        super().__init__()
        blocks: list = [_conv_bn_act(3, 32, 3, 2)]
        prev = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(prev, c, s if i == 0 else 1, t))
                prev = c
        self.features = nn.Sequential(*blocks)

    def forward(self, x: Tensor, taps: Sequence[str] = ("f13",)) -> Dict[str, Tensor]:
        wanted = {TAPS[t]: t for t in taps}
        last = max(wanted)
        out: Dict[str, Tensor] = {}
        for i, block in enumerate(self.features):
            x = block(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == last:
                break
        return out

    def freeze(self, upto: int) -> None:
        """Stop gradients for ``features[:upto]`` (their BN stays in eval mode, see :func:`set_train_mode`)."""
        for block in self.features[:upto]:
            for p in block.parameters():
                p.requires_grad_(False)

    def frozen_blocks(self) -> Iterable[nn.Module]:
        return [b for b in self.features if not any(p.requires_grad for p in b.parameters())]


def load_imagenet_features(trunk: MobileNetV2Trunk, path: Union[str, Path]) -> int:
    """Copy ImageNet weights (torchvision keys ``features.N...``, any float dtype) into ``trunk``.

    Keys of blocks beyond ``features[13]`` and of the classifier are ignored; every trunk key must be
    present. Returns the number of tensors loaded.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path} (set 'backbone_init' in the training config)")
    src = load_file(str(path))
    own = trunk.state_dict()
    missing = [k for k in own if k not in src]
    if missing:
        raise ValueError(
            f"{path} lacks {len(missing)} MobileNetV2 keys (e.g. {missing[:3]}); is it torchvision's layout?"
        )
    new = {}
    for k, v in own.items():
        w = src[k]
        if tuple(w.shape) != tuple(v.shape):
            raise ValueError(f"{path}: {k} has shape {tuple(w.shape)}, expected {tuple(v.shape)}")
        new[k] = w.to(v.dtype)
    trunk.load_state_dict(new, strict=True)
    return len(new)


def build_mnv2_cm() -> RefinerNet:
    """MobileNetV2 refiner: same structure as AR34 c+m with smaller heads."""
    return RefinerNet(
        MobileNetV2Trunk(),
        CorrelationNeck(64, 96, 64),
        CornerHead(64, (128, 64, 64, 32), stride=16),
        MaskHead(64, (64, 32, 16), (32, 16, 4), (64, 32, 16)),
        feature_adapters((16, 24, 32), (16, 32, 64)),
        mask_taps=("f1", "f3", "f6"),
        deep_tap="f13",
    )


def build_mnv2_cmi() -> RefinerNet:
    """``mnv2_cm`` plus a learned confidence (:class:`~alpharefine_sdk.nn.heads.IoUHead`)."""
    net = build_mnv2_cm()
    net.iou_head = IoUHead(64)
    return net


def build_mnv2_cmi2() -> RefinerNet:
    """``mnv2_cmi`` whose confidence also samples each box on the fusion feature and on the stride-8
    backbone feature (:class:`~alpharefine_sdk.nn.heads.AlignedIoUHead`); boxes and masks as ``mnv2_cmi``."""
    net = build_mnv2_cm()
    net.iou_head = AlignedIoUHead(64, fine_ch=32)
    net.iou_tap = "f6"
    return net


def build_mnv2_cmi3() -> RefinerNet:
    """``mnv2_cmi2`` whose confidence also samples along each box edge on the stride-8 and the
    stride-4 backbone features (:class:`~alpharefine_sdk.nn.heads.EdgeIoUHead`); boxes and masks as
    ``mnv2_cm``."""
    net = build_mnv2_cm()
    net.iou_head = EdgeIoUHead(64, fine_ch=32, edge_ch=24)
    net.iou_tap = ("f6", "f3")
    return net


def build_mnv2_cmi4() -> RefinerNet:
    """``mnv2_cmi2`` whose corner maps are refined at stride 8 with the stride-8 backbone feature
    (:class:`~alpharefine_sdk.nn.heads.FineCornerHead`); masks and confidence as ``mnv2_cmi2``."""
    net = build_mnv2_cmi2()
    net.corner_head = FineCornerHead(64, (128, 64, 64, 32), stride=16, fine_ch=32)
    net.corner_tap = "f6"
    return net
