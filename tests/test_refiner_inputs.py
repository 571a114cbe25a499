"""Bad input gets a clear error naming the argument; nothing yields a NaN box."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from conftest import DATA, need

from alpharefine_sdk import Refiner, WeightsError


@pytest.fixture(scope="module")
def frame():
    import cv2

    path = need(DATA / "sequences/otb/Crossing/img/0001.jpg")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


BOX = np.array([204.0, 150.0, 17.0, 50.0])  # Crossing frame 1 (ground truth, 1-based OTB box)


@pytest.fixture
def ready(refiner, frame):
    refiner.initialize(frame, BOX)
    return refiner


def test_refine_before_initialize(refiner, frame):
    assert not refiner.is_initialized
    with pytest.raises(RuntimeError, match="initialize"):
        refiner.refine(frame, BOX)


def test_reset(ready, frame):
    assert ready.is_initialized
    ready.reset()
    assert not ready.is_initialized
    with pytest.raises(RuntimeError, match="initialize"):
        ready.refine(frame, BOX)


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (np.array([np.nan, 1, 10, 10]), ValueError, "NaN or inf"),
        (np.array([0, 1, np.inf, 10]), ValueError, "NaN or inf"),
        (np.array([10, 10, 0, 10]), ValueError, "width and height > 0"),
        (np.array([10, 10, 5, -3]), ValueError, "width and height > 0"),
        ([1, 2, 3], ValueError, "4 values"),
        (np.zeros((2, 4)), ValueError, "4 values"),
        ("1,2,3,4", TypeError, "4 numbers"),
        ([1, 2, "a", 4], TypeError, "4 numbers"),
        (None, TypeError, "4 numbers"),
        ([5000, 10, 20, 20], ValueError, "wholly outside"),
        ([-50, 10, 20, 20], ValueError, "wholly outside"),
    ],
)
def test_bad_boxes(ready, frame, bad, exc, words):
    with pytest.raises(exc, match=words) as info:
        ready.refine(frame, bad)
    assert "box" in str(info.value)
    with pytest.raises(exc, match=words):
        ready.clone().initialize(frame, bad)


@pytest.mark.parametrize(
    "convert",
    [list, tuple, np.asarray, torch.tensor, lambda b: np.asarray(b)[None], lambda b: np.asarray(b, dtype=np.float32)],
)
def test_box_types_accepted(ready, frame, convert):
    """Lists, tuples, arrays of any float dtype, (1, 4) arrays and tensors all work."""
    box = np.array([204.0, 150.0, 17.0, 50.0])  # exactly representable in float32
    want, _ = ready.refine(frame, box)
    got, _ = ready.refine(frame, convert(box.tolist() if convert in (list, tuple) else box))
    np.testing.assert_array_equal(got, want)
    ints, _ = ready.refine(frame, box.astype(np.int64))
    np.testing.assert_array_equal(ints, want)


def test_list_box_same_result(ready, frame):
    a, _ = ready.refine(frame, BOX)
    b, _ = ready.refine(frame, BOX.tolist())
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "make, exc, words",
    [
        (lambda f: f.astype(np.float32), TypeError, "uint8"),
        (lambda f: f.astype(np.uint16), TypeError, "uint8"),
        (lambda f: np.dstack([f, f[..., :1]]), ValueError, "alpha"),
        (lambda f: f[..., :2], ValueError, "H x W x 3"),
        (lambda f: f[None], ValueError, "H x W x 3"),
        (lambda f: f[:0], ValueError, "empty"),
        (lambda f: f.tolist(), TypeError, "numpy array"),
        (lambda f: None, TypeError, "numpy array"),
    ],
)
def test_bad_frames(ready, frame, make, exc, words):
    bad = make(frame)
    with pytest.raises(exc, match=words) as info:
        ready.refine(bad, BOX)
    assert "frame" in str(info.value)


def test_bad_image_format(ready, frame):
    with pytest.raises(ValueError, match="image_format"):
        ready.refine(frame, BOX, image_format="HSV")
    with pytest.raises(ValueError, match="image_format"):
        Refiner(ready.engine, ready.config, image_format="rgba")


def test_bgr_equals_rgb(ready, frame):
    rgb, _ = ready.refine(frame, BOX)
    bgr, _ = ready.refine(np.ascontiguousarray(frame[..., ::-1]), BOX, image_format="BGR")
    np.testing.assert_array_equal(rgb, bgr)
    other = ready.clone()
    other.image_format = "BGR"
    other.initialize(np.ascontiguousarray(frame[..., ::-1]), BOX)
    np.testing.assert_array_equal(other.refine(np.ascontiguousarray(frame[..., ::-1]), BOX).box, rgb)


def test_grayscale_expanded(ready, frame):
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    a, _ = ready.refine(gray, BOX)
    b, _ = ready.refine(np.dstack([gray] * 3), BOX)
    c, _ = ready.refine(gray[..., None], BOX)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_clone_shares_network_not_template(ready, frame):
    other = ready.clone()
    assert other.engine is ready.engine and other.net is ready.net
    assert not other.is_initialized
    other.initialize(frame, [100, 100, 60, 60])
    assert not np.array_equal(other.refine(frame, BOX).box, ready.refine(frame, BOX).box)


def test_clip_option(ready, frame):
    H, W = frame.shape[:2]
    box = np.array([W - 12.0, H - 30.0, 40.0, 60.0])  # crosses the bottom-right corner
    out = ready.refine(frame, box, clip=True, min_size=10).box
    x, y, w, h = out
    assert x >= 0 and y >= 0 and x + w <= W + 1e-9 and y + h <= H + 1e-9 and w >= 10 - 1e-9 and h >= 10 - 1e-9


def test_never_nan(ready, frame):
    """Tiny, huge, border-crossing and extreme-aspect boxes all give finite boxes and masks."""
    H, W = frame.shape[:2]
    rng = np.random.default_rng(0)
    boxes = [
        [0, 0, 0.2, 0.3],
        [W - 1, H - 1, 0.7, 0.9],
        [-W / 2, -H / 2, 2 * W, 2 * H],
        [3, 100, W - 6, 1.5],
        [100, 2, 1, H],
    ]
    for _ in range(20):
        w, h = np.exp(rng.uniform(np.log(1), np.log(W), 2))
        boxes.append([rng.uniform(-w + 1, W - 1), rng.uniform(-h + 1, H - 1), w, h])
    for b in boxes:
        box, mask = ready.refine(frame, b, mask=True)
        assert np.isfinite(box).all(), b
        assert np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1


def test_default_device_is_cpu_here(ar34):
    if not torch.cuda.is_available():
        assert ar34.engine.device.type == "cpu"
    assert not any(p.requires_grad for p in ar34.net.parameters())
    assert not ar34.net.training


# ---------------------------------------------------------------- weight files
def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        Refiner.from_pretrained(str(tmp_path / "nope.pth.tar"))


def test_truncated_checkpoint(tmp_path, checkpoint_path):
    bad = tmp_path / "cut.pth.tar"
    bad.write_bytes(checkpoint_path.read_bytes()[:1_000_000])
    with pytest.raises(WeightsError, match="complete|could not read"):
        Refiner.from_pretrained(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "junk.pth.tar"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(WeightsError):
        Refiner.from_pretrained(bad)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zipfile", [True, False])
def test_malicious_pickle_never_runs(tmp_path, zipfile):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"net": {"x": torch.zeros(1)}, "settings": _Evil(marker)}, path, _use_new_zipfile_serialization=zipfile)
    with pytest.raises(WeightsError, match="refus"):
        Refiner.from_pretrained(path)
    assert not marker.exists()


def test_foreign_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"net": torch.nn.Linear(3, 4).state_dict()}, path)
    with pytest.raises(WeightsError, match="missing") as info:
        Refiner.from_pretrained(path)
    assert "unexpected" in str(info.value) and "weight" in str(info.value)


def test_nan_weights_refused(tmp_path, ar34):
    sd = {k: v.clone() for k, v in ar34.net.state_dict().items()}
    sd["neck.post_corr.0.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pth.tar"
    torch.save({"net": sd}, path)
    with pytest.raises(WeightsError, match="NaN"):
        Refiner.from_pretrained(path)


def test_zip_serialization_and_bare_state_dict(tmp_path, ar34, frame):
    """The zip format, a bare state dict, and a DDP 'module.' prefix all load to the same weights."""
    sd = ar34.net.state_dict()
    ref = ar34.clone()
    ref.initialize(frame, BOX)
    want = ref.refine(frame, BOX).box
    variants = {
        "zip.pth.tar": {"net": sd},
        "bare.pth": dict(sd),
        "ddp.pth.tar": {"net": {"module." + k: v for k, v in sd.items()}},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        r = Refiner.from_pretrained(tmp_path / name, backend="torch", device="cpu", fold_bn=False, channels_last=False)
        r.initialize(frame, BOX)
        np.testing.assert_array_equal(r.refine(frame, BOX).box, want)


def test_import_is_cheap():
    import subprocess

    code = "import sys, alpharefine_sdk; print(sorted(m for m in ('torch','cv2','huggingface_hub','onnxruntime','openvino','triton') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
