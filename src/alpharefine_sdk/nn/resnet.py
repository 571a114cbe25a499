"""ResNet-34 trunk (conv1 .. layer3) with torchvision parameter names.

Only the stages the refiner uses are built: layer4 and the classifier never run at inference, so
they are left out and the checkpoint loader drops exactly those keys.
"""

from __future__ import annotations

from typing import Dict, Sequence

from torch import Tensor, nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual shortcut (1x1 projection when the shape changes)."""

    bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))  # BNs applied right after a conv (for folding)

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(in_ch, out_ch, stride)]
    layers += [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet34Trunk(nn.Module):
    """ResNet-34 up to layer3. ``forward`` returns the requested taps.

    Taps for a 256x256 input: ``conv1`` 64ch/2, ``layer1`` 64ch/4, ``layer2`` 128ch/8,
    ``layer3`` 256ch/16.
    """

    bn_pairs = (("conv1", "bn1"),)
    tap_channels = {"conv1": 64, "layer1": 64, "layer2": 128, "layer3": 256}

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 3, 1)
        self.layer2 = _stage(64, 128, 4, 2)
        self.layer3 = _stage(128, 256, 6, 2)

    def forward(self, x: Tensor, taps: Sequence[str] = ("layer3",)) -> Dict[str, Tensor]:
        out: Dict[str, Tensor] = {}
        x = self.relu(self.bn1(self.conv1(x)))
        if "conv1" in taps:
            out["conv1"] = x
        x = self.layer1(self.maxpool(x))
        if "layer1" in taps:
            out["layer1"] = x
        x = self.layer2(x)
        if "layer2" in taps:
            out["layer2"] = x
        if "layer3" in taps:
            out["layer3"] = self.layer3(x)
        return out


# Keys of the original checkpoint that belong to stages we never build (layer4, fc): 44 entries.
def is_unused_resnet_key(key: str, prefix: str = "feature_extractor.") -> bool:
    """True for the original ResNet-34 keys of layer4 and the classifier, which inference never uses."""
    return key.startswith(prefix + "layer4.") or key.startswith(prefix + "fc.")
