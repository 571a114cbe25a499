"""Template/search pair sampling. Sample ``i`` is a pure function of ``(seed, i)``, so a run that
resumes at sample ``n``, or is split over several processes, sees exactly the same samples.

Kinds of pair:
* ``video``: template and search frames of one video at most the source's ``max_gap`` (default 50)
  source frames apart;
* ``still``: one still image seen through two independent augmentations (rescale, brightness);
* ``paste``: an object cut out with its mask and pasted onto other images / video frames, at an
  independent place, size and aspect for template and search.

Crops go through the inference code (``geometry.crop``), masks through the same ``crop_patch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..geometry.crop import box_in_crop, crop_patch, crop_window
from .augment import (
    DEFAULT_DEGRADE_KINDS,
    Jitter,
    brightness,
    check_degrade,
    cutout,
    degrade,
    grayscale,
    paste,
    pick_jitter,
    rescale,
)
from .sources import StillImage, Video

DEFAULT_JITTER: Tuple[Tuple[float, Jitter], ...] = (
    (0.6, Jitter(0.25, 0.25)),  # the paper's search jitter
    (0.25, Jitter(0.5, 0.75, 0.3)),  # weak-tracker errors: wrong scale, aspect and centre
    (0.15, Jitter(0.05, 0.05)),  # near-perfect boxes: learn to leave them alone
)


@dataclass
class Sample:
    """One training pair, crops already made (uint8 RGB ``S x S x 3``)."""

    template: np.ndarray
    search: np.ndarray
    corners: np.ndarray  # ground truth (x1, y1, x2, y2) in search-crop pixels, float32
    input_corners: np.ndarray  # the jittered box the crop was taken around, same space
    mask: np.ndarray  # S x S uint8 0..255 (zeros when has_mask is False)
    has_mask: bool
    kind: str


class PairSampler:
    """Draws :class:`Sample` s from weighted sources.

    Args:
        sources: ``[(kind, items, weight), ...]`` with kind ``"video"`` (items: :class:`Video`),
            ``"still"`` or ``"paste"`` (items: :class:`StillImage`; ``paste`` uses instances with
            masks, and also accepts videos with masks as the object pool).
        backgrounds: images / frames to paste onto (defaults to every frame of every source).
    """

    def __init__(
        self,
        sources: Sequence[Tuple[str, list, float]],
        *,
        seed: int = 0,
        jitter: Sequence[Tuple[float, Jitter]] = DEFAULT_JITTER,
        factor: float = 2.0,
        out_size: int = 256,
        grayscale_p: float = 0.05,
        flip_p: float = 0.5,
        brightness_range: Tuple[float, float] = (0.8, 1.2),
        degrade_p: float = 0.0,
        degrade_kinds: Sequence[str] = DEFAULT_DEGRADE_KINDS,
        backgrounds: Optional[List[np.ndarray]] = None,
    ) -> None:
        self.sources = [(k, list(items), float(w)) for k, items, w in sources if float(w) > 0 and len(items)]
        for k, _, _ in self.sources:
            if k not in ("video", "still", "paste"):
                raise ValueError(f"unknown source kind {k!r}; use 'video', 'still' or 'paste'")
        if not self.sources:
            raise ValueError("no training source with items and a weight > 0")
        w = np.array([s[2] for s in self.sources])
        self.p = w / w.sum()
        self.seed = int(seed)
        self.jitter = tuple(jitter)
        self.factor, self.S = factor, out_size
        self.grayscale_p, self.flip_p, self.brightness_range = grayscale_p, flip_p, brightness_range
        self.degrade_kinds = check_degrade(degrade_p, degrade_kinds)
        self.degrade_p = float(degrade_p)
        self._paste_objects = {i: self._objects(items) for i, (k, items, _) in enumerate(self.sources) if k == "paste"}
        for objs in self._paste_objects.values():
            if not objs:
                raise ValueError("a 'paste' source needs instances with masks (YOLO-seg / COCO polygons / DAVIS)")
        self.backgrounds = backgrounds if backgrounds is not None else self._all_images()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _objects(items) -> list:
        out = []
        for it in items:
            if isinstance(it, StillImage):
                out += [(it, j) for j, inst in enumerate(it.instances) if inst.mask is not None]
            elif isinstance(it, Video) and it.masks is not None:
                out += [(it, int(j)) for j in it.visible]
        return out

    def _all_images(self) -> List[np.ndarray]:
        imgs: List[np.ndarray] = []
        for _, items, _ in self.sources:
            for it in items:
                if isinstance(it, StillImage):
                    imgs.append(it.image)
                else:
                    imgs += it.frames[:: max(1, len(it.frames) // 20)]
        return imgs

    # ------------------------------------------------------------------ sampling
    def sample(self, index: int) -> Sample:
        """The sample with this index (deterministic)."""
        rng = np.random.default_rng([self.seed, int(index)])
        for _ in range(50):
            i = int(rng.choice(len(self.sources), p=self.p))
            kind, items, _ = self.sources[i]
            if kind == "video":
                pair = self._video_pair(items, rng)
            elif kind == "still":
                pair = self._still_pair(items, rng)
            else:
                pair = self._paste_pair(self._paste_objects[i], rng)
            if pair is None:
                continue
            s = self._crop_pair(*pair, rng)
            if s is not None:
                s.kind = kind
                return s
        raise RuntimeError(f"could not draw a valid sample {index} in 50 tries; check the sources' boxes")

    def _video_pair(self, videos: List[Video], rng):
        v = videos[int(rng.integers(len(videos)))]
        if len(v.visible) < 2:
            return None
        ref = int(v.visible[int(rng.integers(len(v.visible)))])
        near = v.visible[(v.visible >= ref - v.max_gap) & (v.visible < ref + v.max_gap)]
        test = int(near[int(rng.integers(len(near)))])
        m = v.masks[test] if v.masks is not None else None
        return v.frames[ref], v.gt[ref], v.frames[test], v.gt[test], m

    def _still_pair(self, stills: List[StillImage], rng):
        st = stills[int(rng.integers(len(stills)))]
        inst = st.instances[int(rng.integers(len(st.instances)))]
        fx, fy = np.exp(rng.standard_normal(2) * 0.15)
        img, m, box = rescale(st.image, inst.mask, inst.box, fx, fy)
        return st.image, inst.box, img, box, m

    def _paste_pair(self, objects, rng):
        item, j = objects[int(rng.integers(len(objects)))]
        if isinstance(item, StillImage):
            inst = item.instances[j]
            obj, om = cutout(item.image, inst.mask, inst.box)
        else:
            obj, om = cutout(item.frames[j], item.masks[j], item.gt[j])
        if obj.size == 0 or om.max() == 0:
            return None
        bg_t = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        bg_s = bg_t if rng.random() < 0.5 else self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        size_range = (0.12, 0.45)
        t_img, t_mask = paste(bg_t, obj, om, rng, size_range=size_range)
        s_img, s_mask = paste(
            bg_s,
            obj,
            om,
            rng,
            size_range=size_range,
            scale=float(np.exp(rng.standard_normal() * 0.2)),
            aspect=float(np.exp(rng.standard_normal() * 0.15)),
        )
        from .sources import mask_box

        tb, sb = mask_box(t_mask), mask_box(s_mask)
        if tb is None or sb is None:
            return None
        return t_img, tb, s_img, sb, s_mask

    def _crop_pair(self, t_img, t_box, s_img, s_box, s_mask, rng) -> Optional[Sample]:
        S = self.S
        t_box, s_box = np.asarray(t_box, np.float64), np.asarray(s_box, np.float64)
        if not (np.isfinite(t_box).all() and np.isfinite(s_box).all()) or min(t_box[2:].min(), s_box[2:].min()) < 2:
            return None
        jb = pick_jitter(self.jitter, rng).apply(s_box, rng)
        H, W = s_img.shape[:2]
        if jb[2] < 2 or jb[3] < 2 or jb[0] + jb[2] <= 1 or jb[1] + jb[3] <= 1 or jb[0] >= W - 1 or jb[1] >= H - 1:
            return None
        try:
            t_win = crop_window(t_box, self.factor, S)
            s_win = crop_window(jb, self.factor, S)
            t = crop_patch(t_img, t_win)
            s = crop_patch(s_img, s_win)
            m = crop_patch(s_mask, s_win) if s_mask is not None else None
        except ValueError:
            return None
        g = box_in_crop(s_box, s_win)
        if g[2] < 4 or g[3] < 4:
            return None
        ib = box_in_crop(jb, s_win)
        corners = np.array([g[0], g[1], g[0] + g[2], g[1] + g[3]], dtype=np.float32)
        inp = np.array([ib[0], ib[1], ib[0] + ib[2], ib[1] + ib[3]], dtype=np.float32)
        if rng.random() < self.grayscale_p:
            t, s = grayscale(t), grayscale(s)
        lo, hi = self.brightness_range
        if hi > lo:
            t, s = brightness(t, rng, lo, hi), brightness(s, rng, lo, hi)
        flip = rng.random() < self.flip_p
        if self.degrade_p:  # template and search crop each on their own (different frames, cameras)
            t = degrade(t, rng, self.degrade_kinds) if rng.random() < self.degrade_p else t
            s = degrade(s, rng, self.degrade_kinds) if rng.random() < self.degrade_p else s
        if flip:
            t, s = t[:, ::-1], s[:, ::-1]
            m = m[:, ::-1] if m is not None else None
            corners = np.array([S - corners[2], corners[1], S - corners[0], corners[3]], dtype=np.float32)
            inp = np.array([S - inp[2], inp[1], S - inp[0], inp[3]], dtype=np.float32)
        has_mask = m is not None
        mask = np.ascontiguousarray(m) if has_mask else np.zeros((S, S), np.uint8)
        return Sample(np.ascontiguousarray(t), np.ascontiguousarray(s), corners, inp, mask, has_mask, "")
