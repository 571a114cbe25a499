"""A tiny refiner architecture (``tiny_test``, about 30k parameters) for core tests that need
nothing outside the repository: same contract as the real networks (taps at strides 2, 4, 8 and
16, the correlation neck, corner and mask heads), random weights, milliseconds per refine."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

import torch
from torch import Tensor, nn

from alpharefine_sdk.config import ModelConfig
from alpharefine_sdk.nn.arnet import RefinerNet
from alpharefine_sdk.nn.fusion import CorrelationNeck
from alpharefine_sdk.nn.heads import CornerHead, MaskHead, feature_adapters

NAME = "tiny_test"
ROOT_DATA = Path(__file__).resolve().parents[1] / "data" / "Crossing"


class TinyTrunk(nn.Module):
    """Four stride-2 conv stages; ``forward(x, taps)`` returns the requested ones (s1..s4)."""

    def __init__(self) -> None:
        super().__init__()
        chans = [(3, 8), (8, 8), (8, 16), (16, 16)]
        self.stages = nn.ModuleDict(
            {
                f"s{i + 1}": nn.Sequential(nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
                for i, (a, b) in enumerate(chans)
            }
        )

    def forward(self, x: Tensor, taps: Sequence[str] = ("s4",)) -> Dict[str, Tensor]:
        out = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in taps:
                out[name] = x
        return out


def build_tiny() -> RefinerNet:
    return RefinerNet(
        TinyTrunk(),
        CorrelationNeck(64, 16, 16),
        CornerHead(16, (16, 16, 8, 8), stride=16),
        MaskHead(16, (16, 8, 8), (8, 4, 4), (8, 8, 8)),
        feature_adapters((8, 8, 16), (8, 8, 16)),
        mask_taps=("s1", "s2", "s3"),
        deep_tap="s4",
    )


def register() -> None:
    """Add ``tiny_test`` to the architecture table for this test process only."""
    try:
        from alpharefine_sdk.nn.registry import ARCHITECTURES
    except ImportError:  # before the static registry module
        from alpharefine_sdk.nn.arnet import ARCHITECTURES
    ARCHITECTURES.setdefault(NAME, build_tiny)


def tiny_refiner(seed: int = 0, gate=None, **extra):
    """A CPU :class:`~alpharefine_sdk.Refiner` on a seeded random ``tiny_test`` network."""
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.backends import make_engine

    register()
    torch.manual_seed(seed)
    net = build_tiny().eval()
    config = ModelConfig(architecture=NAME, license="Apache-2.0", source="tests/tiny.py", extra=dict(extra))
    return Refiner(make_engine("torch", net, config, device="cpu"), config, gate=gate)
