"""Strict state-dict checks shared by every weight source."""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

from ..errors import WeightsError


def _dtype_fits(value: torch.Tensor, want: torch.Tensor) -> bool:
    """Floating weights may come in any float precision; anything else must match exactly
    (a bool or int8 tensor where the model has floats is a wrong file, not a cast)."""
    if not isinstance(value, torch.Tensor):
        return False
    if want.is_floating_point():
        return value.is_floating_point()
    return value.dtype == want.dtype


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
    shapes += [
        f"{k}: file {state[k].dtype} vs model {expected[k].dtype}"
        for k in expected
        if k in state and not _dtype_fits(state[k], expected[k])
    ]
    if missing or unexpected or shapes:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape or dtype", shapes)):
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
