"""Training Alpha-Refine-style refiners (the ``[train]`` extra): sources, pair sampling, loss,
the trainer loop with resume and DDP. Entry points: :func:`train` and ``alpharefine-sdk train``."""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "train", "Trainer"]


def __getattr__(name: str) -> Any:  # keep `import alpharefine_sdk.training` cheap
    if name == "TrainConfig":
        from .config import TrainConfig

        return TrainConfig
    if name in ("train", "Trainer"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
