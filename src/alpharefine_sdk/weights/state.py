"""Strict state-dict checks shared by every weight source."""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import WeightsError


def check_state_dict(
    net: nn.Module, state: Mapping[str, torch.Tensor], *, ignore: Iterable[str] = (), what: str = "weights"
) -> None:
    """Raise :class:`WeightsError` listing missing, unexpected and mis-shaped keys."""
    expected = net.state_dict()
    ignore = set(ignore)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and k not in ignore]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" ... and {len(items) - 10} more" if len(items) > 10 else ""
                parts.append(f"{len(items)} {title}: " + ", ".join(items[:10]) + more)
        raise WeightsError(f"{what} do not fit the architecture: " + "; ".join(parts))
    bad = [k for k, v in state.items() if k in expected and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{what} contain NaN or inf in: " + ", ".join(bad[:10]))


def load_strict(
    net: nn.Module, state: Mapping[str, torch.Tensor], *, ignore: Iterable[str] = (), what: str = "weights"
) -> None:
    """Check then load ``state`` into ``net`` (keys in ``ignore`` are accepted and dropped)."""
    check_state_dict(net, state, ignore=ignore, what=what)
    expected = net.state_dict()
    net.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=True)
