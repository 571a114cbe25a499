"""From a config to batches: decoded sources (the in-memory sample cache), the pair sampler and a
background thread that prepares batches ahead of the training step."""

from __future__ import annotations

import queue
import threading
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..config import Preprocessing
from .augment import Jitter
from .config import SourceConfig, TrainConfig, ValidationConfig
from .sampler import PairSampler, Sample
from .sources import read_coco_json, read_videos, read_yolo

Batch = Dict[str, np.ndarray]


def load_source_items(src: SourceConfig, max_side: int, exclude: Sequence[str] = ()) -> list:
    """Decode one configured source into memory (frames/images as RGB uint8)."""
    if src.format == "video":
        return read_videos(
            src.root,
            include=src.include,
            exclude=list(src.exclude) + list(exclude),
            max_side=max_side,
            frame_limit=src.limit,
        )
    if src.format == "yolo":
        return read_yolo(src.root, max_side=max_side, limit=src.limit)
    return read_coco_json(src.annotations, src.root, max_side=max_side, limit=src.limit)


def jitter_levels(cfg: TrainConfig) -> Tuple[Tuple[float, Jitter], ...]:
    big, small, exact = cfg.jitter_large_share, cfg.jitter_small_share, cfg.jitter_exact_share
    levels = [(1 - big - small - exact, Jitter(0.25, 0.25)), (big, Jitter(0.5, 0.75, 0.3)), (small, Jitter(0.05, 0.05))]
    if exact > 0:
        levels.append((exact, Jitter(0.02, 0.02)))
    return tuple(levels)


def build_sampler(cfg: TrainConfig) -> Tuple[PairSampler, Dict[str, int]]:
    """The training sampler; validation sequences are excluded from every video source."""
    cache: Dict[tuple, list] = {}
    sources, counts = [], {}
    held_out = list(cfg.validation.sequences)
    for i, s in enumerate(cfg.sources):
        key = (s.format, s.root, s.annotations, tuple(s.include or ()), tuple(s.exclude), s.limit)
        if key not in cache:
            cache[key] = load_source_items(s, cfg.max_side, exclude=held_out if s.format == "video" else ())
        items = cache[key]
        if s.kind == "video":
            items = [v.with_max_gap(s.max_gap) for v in items]  # frames shared with the cache
        sources.append((s.kind, items, s.weight))
        counts[f"{i}:{s.kind}:{s.root}"] = len(items)
    crops = cfg.preprocessing()
    sampler = PairSampler(
        sources,
        seed=cfg.seed,
        jitter=jitter_levels(cfg),
        factor=crops.search_factor,
        out_size=crops.input_size,
        degrade_p=cfg.degrade_p,
        degrade_kinds=cfg.degrade_kinds,
    )
    return sampler, counts


def build_validation(val: ValidationConfig, max_side: int, crops: Preprocessing) -> Optional[Batch]:
    """A fixed batch of validation pairs from whole held-out sequences (paper jitter, no photometric)."""
    if not val.root or not val.sequences or val.samples < 1:
        return None
    videos = read_videos(val.root, include=list(val.sequences), max_side=max_side)
    missing = sorted(set(val.sequences) - {v.name for v in videos})
    if missing:
        raise ValueError(f"validation sequences not found under {val.root}: {missing}")
    sampler = PairSampler(
        [("video", videos, 1.0)],
        seed=val.seed,
        jitter=((1.0, Jitter(0.25, 0.25)),),
        grayscale_p=0.0,
        flip_p=0.0,
        brightness_range=(1.0, 1.0),
        factor=crops.search_factor,
        out_size=crops.input_size,
    )
    return collate([sampler.sample(i) for i in range(val.samples)])


def collate(samples: List[Sample]) -> Batch:
    return {
        "template": np.stack([s.template for s in samples]),
        "search": np.stack([s.search for s in samples]),
        "corners": np.stack([s.corners for s in samples]),
        "input_corners": np.stack([s.input_corners for s in samples]),
        "mask": np.stack([s.mask for s in samples]),
        "has_mask": np.array([s.has_mask for s in samples]),
    }


class _BatchDataset:
    """Batch ``k`` = samples ``[first + k*stride + offset, ... + size)`` (for a torch DataLoader)."""

    def __init__(self, sampler: PairSampler, first: int, size: int, stride: int, offset: int) -> None:
        self.sampler, self.first, self.size, self.stride, self.offset = sampler, first, size, stride, offset

    def __getitem__(self, k: int) -> Batch:
        start = self.first + k * self.stride + self.offset
        return collate([self.sampler.sample(start + j) for j in range(self.size)])

    def __len__(self) -> int:
        return 1 << 40


def _identity(b: Batch) -> Batch:
    return b


class WorkerStream:
    """The same batches as :class:`BatchStream`, drawn by ``workers`` processes (in order)."""

    def __init__(
        self,
        sampler: PairSampler,
        first: int,
        size: int,
        stride: int,
        offset: int = 0,
        *,
        workers: int,
        prefetch: int = 4,
    ) -> None:
        import torch

        ds = _BatchDataset(sampler, first, size, stride, offset)
        self._loader = torch.utils.data.DataLoader(
            ds,
            batch_size=None,
            sampler=range(1 << 40),
            num_workers=workers,
            prefetch_factor=prefetch,
            persistent_workers=False,
            collate_fn=_identity,
        )
        self._it = iter(self._loader)

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        return next(self._it)

    def close(self) -> None:
        """Stop the sampler processes: a released DataLoader iterator shuts its workers down."""
        self._it = None


class BatchStream:
    """Batches ``[first + k*stride + offset, ... + size)`` drawn by a background thread.

    With ``stride`` = the global batch and ``offset`` = rank * local batch, DDP processes split each
    global batch exactly as one process would draw it.
    """

    def __init__(
        self, sampler: PairSampler, first: int, size: int, stride: int, offset: int = 0, prefetch: int = 6
    ) -> None:
        self.sampler, self.size, self.stride, self.offset = sampler, size, stride, offset
        self.next_start = first
        self._q: "queue.Queue" = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(first,), daemon=True, name="alpharefine-sampler")
        self._thread.start()

    def _work(self, start: int) -> None:
        k = start
        while not self._stop.is_set():
            try:
                b = collate([self.sampler.sample(k + self.offset + j) for j in range(self.size)])
            except Exception as e:  # surface errors in the training loop
                self._q.put(e)
                return
            while not self._stop.is_set():
                try:
                    self._q.put(b, timeout=0.5)
                    break
                except queue.Full:
                    continue
            k += self.stride

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        b = self._q.get()
        if isinstance(b, Exception):
            raise b
        return b

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
