"""The architecture table: every network a ``config.json`` can name, in one static place.

No module registers itself: adding an architecture means adding its builder here, so a broken
backbone module fails with its own import error instead of "unknown architecture".
"""

from __future__ import annotations

from typing import Callable, Dict

from .arnet import RefinerNet, build_ar34_cm
from .mobilenet import build_mnv2_cm, build_mnv2_cmi, build_mnv2_cmi2, build_mnv2_cmi3, build_mnv2_cmi4

ARCHITECTURES: Dict[str, Callable[[], RefinerNet]] = {
    "ar34_cm": build_ar34_cm,
    "mnv2_cm": build_mnv2_cm,
    "mnv2_cmi": build_mnv2_cmi,
    "mnv2_cmi2": build_mnv2_cmi2,
    "mnv2_cmi3": build_mnv2_cmi3,
    "mnv2_cmi4": build_mnv2_cmi4,
}


def build_net(arch: str) -> RefinerNet:
    """Build an untrained network of the named architecture."""
    try:
        builder = ARCHITECTURES[arch]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}. "
            "Upgrade alpharefine-sdk if these weights come from a newer release."
        ) from None
    return builder()
