"""Training data: YOLO-seg and COCO readers, the pair sampler (inference crops, labels, determinism)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED, need
from hypothesis import given, settings
from hypothesis import strategies as hs

from alpharefine_sdk.boxes import iou, xyxy_to_xywh
from alpharefine_sdk.geometry.crop import crop_patch, crop_window
from alpharefine_sdk.training.augment import DEGRADE_KINDS
from alpharefine_sdk.training.sampler import PairSampler
from alpharefine_sdk.training.sources import mask_box, read_coco_json, read_videos, read_yolo

COCO128 = SHARED / "data" / "coco128"


@pytest.fixture(scope="module")
def stills():
    return read_yolo(need(COCO128), limit=6)


@pytest.fixture(scope="module")
def videos():
    return read_videos(need(SHARED / "train"), include=["bear", "Biker"], frame_limit=12)


def test_yolo_seg_instances_have_masks_and_tight_boxes(stills):
    insts = [i for s in stills for i in s.instances]
    assert len(insts) >= 6 and all(i.mask is not None for i in insts)
    for inst in insts:
        assert np.array_equal(mask_box(inst.mask), inst.box)
        assert inst.box[2] >= 12 and inst.box[3] >= 12


def test_coco_json_gives_the_same_instances(stills, tmp_path):
    """A COCO file written from the YOLO-seg polygons reads back to the same masks."""
    import cv2

    images, anns = [], []
    for k, st in enumerate(stills[:2]):
        path = COCO128 / "images" / "train2017" / f"{st.name}.jpg"
        H, W = cv2.imread(str(path)).shape[:2]
        images.append({"id": k, "file_name": path.name, "width": W, "height": H})
        for line in (COCO128 / "labels" / "train2017" / f"{st.name}.txt").read_text().splitlines():
            v = np.asarray(line.split()[1:], dtype=np.float64).reshape(-1, 2) * [W, H]
            anns.append(
                {
                    "id": len(anns),
                    "image_id": k,
                    "iscrowd": 0,
                    "segmentation": [v.ravel().tolist()],
                    "bbox": [0, 0, 1, 1],
                }
            )
    (tmp_path / "inst.json").write_text(json.dumps({"images": images, "annotations": anns}))
    coco = read_coco_json(tmp_path / "inst.json", COCO128 / "images" / "train2017")
    assert [s.name for s in coco] == [s.name for s in stills[:2]]
    for a, b in zip(coco, stills[:2]):
        assert len(a.instances) == len(b.instances)
        for ia, ib in zip(a.instances, b.instances):
            assert np.array_equal(ia.mask, ib.mask)


def test_videos_keep_masks_and_temporal_gap(videos):
    by = {v.name: v for v in videos}
    assert by["bear"].masks is not None and by["Biker"].masks is None
    assert by["bear"].max_gap == 25  # DAVIS train split kept every 2nd frame: 50 source frames = 25 kept
    assert by["Biker"].max_gap == 50


def _sampler(stills, videos, **kw):
    return PairSampler([("video", videos, 1.0), ("still", stills, 1.0), ("paste", stills, 1.0)], seed=3, **kw)


def test_samples_are_a_function_of_seed_and_index(stills, videos):
    s1, s2 = _sampler(stills, videos), _sampler(stills, videos)
    a, b = s1.sample(17), s2.sample(17)
    assert np.array_equal(a.search, b.search) and np.array_equal(a.corners, b.corners) and a.kind == b.kind
    assert not np.array_equal(s1.sample(18).search, a.search)
    kinds = {s1.sample(i).kind for i in range(30)}
    assert kinds == {"video", "still", "paste"}


def test_template_is_the_inference_crop(stills):
    """Without photometric changes the template equals crop_patch(crop_window(gt)) of the image."""
    sp = PairSampler([("still", stills, 1.0)], seed=0, grayscale_p=0, flip_p=0, brightness_range=(1.0, 1.0))
    for i in range(5):
        rng_free = sp.sample(i)
        # recover which instance: the one whose inference crop matches
        hits = [
            inst
            for st in stills
            for inst in st.instances
            if np.array_equal(crop_patch(st.image, crop_window(inst.box)), rng_free.template)
        ]
        assert len(hits) == 1


def test_paste_labels_match_the_cropped_mask(stills, videos):
    sp = PairSampler([("paste", stills, 1.0)], seed=5, flip_p=0.5)
    for i in range(12):
        s = sp.sample(i)
        assert s.has_mask and s.kind == "paste"
        b = mask_box(s.mask >= 128)
        if b is None or s.corners[0] <= 0.5 or s.corners[2] >= 255.5 or s.corners[1] <= 0.5 or s.corners[3] >= 255.5:
            continue  # the object is cut by the crop border: the box is clamped there
        tight = np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
        assert iou(xyxy_to_xywh(tight), xyxy_to_xywh(s.corners)) > 0.85, (i, tight, s.corners)


def test_flip_mirrors_crops_and_labels(stills, videos):
    a = _sampler(stills, videos, flip_p=0.0).sample(4)
    b = _sampler(stills, videos, flip_p=1.0).sample(4)
    assert np.array_equal(b.search, a.search[:, ::-1]) and np.array_equal(b.mask, a.mask[:, ::-1])
    assert np.allclose(b.corners, [256 - a.corners[2], a.corners[1], 256 - a.corners[0], a.corners[3]])


def test_degrade_changes_pixels_never_labels(stills, videos):
    """Camera-quality changes touch the crops only: same boxes, masks and input box as without them."""
    a = _sampler(stills, videos).sample(7)
    b = _sampler(stills, videos, degrade_p=1.0).sample(7)
    assert np.array_equal(a.corners, b.corners) and np.array_equal(a.input_corners, b.input_corners)
    assert np.array_equal(a.mask, b.mask) and a.kind == b.kind
    assert b.search.shape == a.search.shape and b.search.dtype == np.uint8
    assert not np.array_equal(a.search, b.search) and not np.array_equal(a.template, b.template)
    with pytest.raises(ValueError, match="degrade_p"):
        _sampler(stills, videos, degrade_p=-0.1)
    with pytest.raises(ValueError, match="degrade_kinds"):
        _sampler(stills, videos, degrade_p=0.5, degrade_kinds=["fog"])
    c = _sampler(stills, videos, degrade_p=1.0, degrade_kinds=["motion", "jpeg"]).sample(7)
    assert np.array_equal(c.corners, a.corners) and not np.array_equal(c.search, b.search)


@settings(max_examples=60, deadline=None)
@given(
    seed=hs.integers(0, 2**32 - 1),
    h=hs.integers(4, 64),
    w=hs.integers(4, 64),
    kind=hs.sampled_from(DEGRADE_KINDS),
)
def test_degrade_keeps_shape_dtype_and_content(seed, h, w, kind):
    """Any crop size and kind: uint8 in, uint8 of the same shape out, still close to the input on average."""
    from alpharefine_sdk.training.augment import degrade

    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 128, np.uint8) + rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    out = degrade(img, np.random.default_rng(seed), (kind,))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert abs(float(out.mean()) - float(img.mean())) < 20


def test_validation_sequences_are_held_out_of_training(tmp_path):
    from alpharefine_sdk.training.config import TrainConfig
    from alpharefine_sdk.training.data import build_sampler

    cfg = TrainConfig.from_dict(
        {
            "sources": [
                {"kind": "video", "root": str(need(SHARED / "train")), "include": ["bear", "dog", "Biker"], "limit": 4}
            ],
            "validation": {"root": str(SHARED / "train"), "sequences": ["dog"]},
        }
    )
    sampler, counts = build_sampler(cfg)
    names = {v.name for _, items, _ in sampler.sources for v in items}
    assert names == {"bear", "Biker"}


def test_crops_follow_the_configured_size_and_factor():
    """``input_size`` / ``search_factor`` of the training config reach the sampler: the template
    is the inference crop of that size and factor, the labels are in its pixels."""
    from alpharefine_sdk.training.config import TrainConfig
    from alpharefine_sdk.training.data import build_sampler

    root = str(need(SHARED / "train"))
    src = [{"kind": "video", "root": root, "include": ["bear"], "limit": 4}]
    cfg = TrainConfig.from_dict({"sources": src, "input_size": 192, "search_factor": 1.5})
    sampler, _ = build_sampler(cfg)
    s = sampler.sample(3)
    assert s.template.shape == s.search.shape == (192, 192, 3) and s.mask.shape == (192, 192)
    assert sampler.factor == 1.5 and 0 <= s.corners.min() and s.corners.max() <= 192


def test_max_gap_per_source_shares_the_decoded_frames():
    """Two video sources over the same root, one with the default gap and one spanning the whole
    video: frames are decoded once, and each source's pairs stay within its own gap (in source
    frames: DAVIS train kept every 2nd frame)."""
    from alpharefine_sdk.training.config import TrainConfig
    from alpharefine_sdk.training.data import build_sampler

    root = str(need(SHARED / "train"))
    src = [
        {"kind": "video", "root": root, "include": ["bear", "Biker"], "limit": 40, "max_gap": 6},
        {"kind": "video", "root": root, "include": ["bear", "Biker"], "limit": 40, "max_gap": 100000},
    ]
    sampler, _ = build_sampler(TrainConfig.from_dict({"sources": src}))
    (_, near, _), (_, far, _) = sampler.sources
    gaps = {v.name: (a.max_gap, v.max_gap) for a, v in zip(near, far)}
    assert gaps == {"bear": (3, 50000), "Biker": (6, 100000)}
    for a, b in zip(near, far):
        assert a.frames is b.frames and a.gt is b.gt  # one decoded copy
    rng = np.random.default_rng(0)
    spans = {"near": [], "far": []}
    for name, vids in (("near", near), ("far", far)):
        for _ in range(300):
            f_ref, _, f_test, _, _ = sampler._video_pair(vids, rng)
            v = next(v for v in vids if any(f is f_ref for f in v.frames))
            i = next(k for k, f in enumerate(v.frames) if f is f_ref)
            j = next(k for k, f in enumerate(v.frames) if f is f_test)
            assert abs(i - j) <= v.max_gap
            spans[name].append(abs(i - j))
    assert max(spans["near"]) <= 6 and max(spans["far"]) > 12


@pytest.mark.parametrize(
    "bad, word",
    [
        ({"sources": []}, "sources"),
        ({"sources": [{"kind": "movie", "root": "x"}]}, "kind"),
        ({"sources": [{"kind": "still", "format": "coco", "root": "x"}]}, "annotations"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "precision": "fp8"}, "precision"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "batchsize": 3}, "batchsize"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "input_size": 200}, "input_size"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "search_factor": 0.5}, "search_factor"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "trainable": "heads"}, "trainable"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "rank_weight": -1}, "rank_weight"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "degrade_p": 1.5}, "degrade_p"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "degrade_kinds": ["fog"]}, "degrade_kinds"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "lr": "fast"}, "lr must be a finite number"),
        (
            {"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "batch_size": 3.5},
            "batch_size must be an integer",
        ),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "channels_last": "yes"}, "channels_last"),
        ({"sources": [{"kind": "still", "format": "yolo", "root": "x", "weight": "2"}]}, r"sources\[0\]\.weight"),
        ({"sources": [{"kind": "video", "root": "x", "max_gap": 0}]}, r"sources\[0\]\.max_gap"),
        ({"sources": [{"kind": "paste", "root": "x", "max_gap": 200}]}, r"max_gap applies to kind 'video'"),
        (
            {"sources": [{"kind": "still", "format": "yolo", "root": "x"}], "validation": {"samples": "9"}},
            "validation.samples",
        ),
    ],
)
def test_config_errors_name_the_key(bad, word):
    from alpharefine_sdk.training.config import TrainConfig

    with pytest.raises(ValueError, match=word):
        TrainConfig.from_dict(bad)


def test_worker_stream_draws_the_thread_streams_batches_and_closes(stills, videos):
    """Sampler processes give the same batches, in order, as the background thread; close() ends them."""
    import multiprocessing
    import time

    from alpharefine_sdk.training.data import BatchStream, WorkerStream

    sampler = _sampler(stills, videos)
    thread = BatchStream(sampler, 4, 2, 2)
    procs = WorkerStream(sampler, 4, 2, 2, workers=2, prefetch=1)
    try:
        for _ in range(3):
            a, b = next(thread), next(procs)
            assert all(np.array_equal(a[k], b[k]) for k in a)
        assert len(multiprocessing.active_children()) >= 2
    finally:
        thread.close()
        procs.close()
    deadline = time.time() + 20
    while multiprocessing.active_children() and time.time() < deadline:
        time.sleep(0.2)
    assert not multiprocessing.active_children()
