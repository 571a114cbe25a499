"""Batch-norm folding for inference: every eval-mode BN that directly follows a conv goes into it.

Sequentials (conv, BN, ...) are found generically; a module whose ``forward`` applies a BN right
after a conv held as attributes declares the pairs itself, as a class attribute
``bn_pairs = (("conv1", "bn1"), ...)`` (see ``nn.resnet.BasicBlock``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


def fold_conv_bn(weight: Tensor, bias: Optional[Tensor], bn: nn.BatchNorm2d) -> Tuple[Tensor, Tensor]:
    """Conv weight/bias with an eval-mode batch norm folded in (computed in float64)."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = weight.double() * scale.view(-1, *([1] * (weight.dim() - 1)))
    b = bias.double() if bias is not None else torch.zeros_like(bn.running_mean, dtype=torch.float64)
    b = (b - bn.running_mean.double()) * scale + bn.bias.double()
    return w.to(weight.dtype), b.to(weight.dtype)


def _fold_pair(conv: nn.Module, bn: nn.Module) -> bool:
    if not (
        isinstance(conv, nn.Conv2d)
        and isinstance(bn, nn.BatchNorm2d)
        and bn.num_features == conv.out_channels
        and bn.track_running_stats
        and bn.running_var is not None
    ):
        return False
    w, b = fold_conv_bn(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(), bn)
    conv.weight = nn.Parameter(w, requires_grad=False)
    conv.bias = nn.Parameter(b, requires_grad=False)
    return True


def fold_batch_norms(net: nn.Module) -> Tuple[int, int]:
    """Fold every eval-mode BN that directly follows a conv into it (BN becomes Identity), in place.

    Returns ``(folded, left)``: BNs folded and BNs left as they were (unknown module patterns).
    """
    folded = 0
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                if _fold_pair(module._modules[a], module._modules[b]):
                    module._modules[b] = nn.Identity()
                    folded += 1
        for conv_name, bn_name in getattr(type(module), "bn_pairs", ()):
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if conv is not None and bn is not None and _fold_pair(conv, bn):
                setattr(module, bn_name, nn.Identity())
                folded += 1
    left = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    return folded, left
