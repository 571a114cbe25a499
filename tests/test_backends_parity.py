"""The three engines (torch, ONNX Runtime, OpenVINO) against the original's goldens, and the
same bad-input behaviour through ``Refiner.from_pretrained(..., backend=...)``.

The graphs are exported once per session; the optional backends skip when their runtime is
not installed.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import CHECKPOINT, CORNER_TOL, need

BACKENDS = ("torch", "onnxruntime", "openvino")
RUNTIME = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
# end-to-end subset: plain, border, tiny, large, aspect, rounding, grayscale, with and without mask
E2E_CASES = (0, 21, 26, 32, 35, 37)


_CACHE: dict = {}


def export_dir(ar34) -> Path:
    """One ONNX export (template, box, box + mask) of the session network per test session."""
    if "export" not in _CACHE:
        tmp = Path(tempfile.mkdtemp(prefix="alpharefine-test-onnx-"))
        atexit.register(shutil.rmtree, tmp, True)
        _CACHE["export"] = ar34.export_onnx(tmp / "onnx", with_mask=True, verify=False)
    return _CACHE["export"]


def backend_refiner(ar34, backend: str, precision: str = "fp32"):
    """A session-wide refiner on the parity checkpoint for ``backend`` (skips without its runtime).

    For torch fp32 this is ``ar34`` itself, the very refiner that was exported: its parity shows
    that exporting leaves the network untouched.
    """
    if backend in RUNTIME:
        pytest.importorskip(RUNTIME[backend], reason=f"backend={backend!r} needs its extra installed")
        pytest.importorskip("onnx")
    key = (backend, precision)
    if key not in _CACHE:
        from alpharefine_sdk import Refiner

        if backend == "torch" and precision == "fp32":
            export_dir(ar34)
            _CACHE[key] = ar34
        elif backend == "torch":
            _CACHE[key] = Refiner.from_pretrained(need(CHECKPOINT), backend="torch", device="cpu", precision=precision)
        else:
            _CACHE[key] = Refiner.from_pretrained(
                need(CHECKPOINT), backend=backend, precision=precision, onnx_dir=export_dir(ar34)
            )
    return _CACHE[key]


def golden_crops(golden, kind: str) -> np.ndarray:
    import cv2

    png, off = golden[f"{kind}_crop_png"], golden[f"{kind}_crop_png_offsets"]
    return np.stack([cv2.imdecode(png[off[i] : off[i + 1]], cv2.IMREAD_UNCHANGED) for i in range(len(off) - 1)])


@pytest.fixture(scope="module")
def crops(golden):
    return golden_crops(golden, "template"), golden_crops(golden, "search")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


# ---------------------------------------------------------------------------- network parity
def test_corners_match_goldens(ar34, backend, golden, crops):
    eng = backend_refiner(ar34, backend).engine
    templates, searches = crops
    kernels = eng.template(templates)
    k = eng.concat([kernels[t : t + 1] for t in golden["template_index"]])
    corners, masks = eng.search(searches, k, with_mask=False)
    assert masks is None
    assert corners.dtype == np.float32 and corners.shape == (len(searches), 4)
    np.testing.assert_allclose(corners, golden["corners"], rtol=0, atol=CORNER_TOL)


def test_masks_match_goldens(ar34, backend, golden, crops):
    eng = backend_refiner(ar34, backend).engine
    templates, searches = crops
    idx = golden["mask_case"].astype(int)
    kernels = eng.template(templates[golden["template_index"][idx]])
    corners, masks = eng.search(searches[idx], kernels, with_mask=True)
    np.testing.assert_allclose(corners, golden["corners"][idx], rtol=0, atol=CORNER_TOL)
    assert masks.dtype == np.float32 and masks.shape == (len(idx), 256, 256)
    np.testing.assert_allclose(masks, golden["mask_crop_u16"] / 65535.0, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------- public API parity
@pytest.mark.parametrize("case", E2E_CASES)
def test_refine_end_to_end(ar34, backend, golden, parity_frames, case):
    r = backend_refiner(ar34, backend).clone()
    with_mask = bool(golden["has_mask"][case])
    r.initialize(parity_frames[golden["ref_frame"][case]], golden["init_box"][case])
    res = r.refine(parity_frames[golden["test_frame"][case]], golden["input_box"][case], mask=with_mask)
    box, mask = res.network_box, res.mask  # the network's box, also where it is degenerate (case 32)
    _, _, ws, hs = golden["search_window"][case]
    tol = CORNER_TOL * max(1.0, ws / 256, hs / 256)
    np.testing.assert_allclose(box, golden["box"][case], rtol=0, atol=tol)
    if with_mask:
        np.testing.assert_allclose(mask, golden[f"mask_frame_u16_{case:02d}"] / 65535.0, rtol=0, atol=1e-4)
    else:
        assert mask is None


def test_outside_boxes_refused(ar34, backend, golden, parity_frames):
    r = backend_refiner(ar34, backend).clone()
    r.initialize(parity_frames[2], golden["init_box"][5])
    for case in np.flatnonzero(["outside" in t for t in golden["case_tags"]]):
        with pytest.raises(ValueError, match="outside"):
            r.refine(parity_frames[golden["test_frame"][case]], golden["input_box"][case])


# ---------------------------------------------------------------------------- bad input, same everywhere
def test_bad_input_same_errors(ar34, backend, parity_frames):
    r = backend_refiner(ar34, backend).clone()
    frame = parity_frames[9]
    with pytest.raises(RuntimeError, match="initialize"):
        r.refine(frame, (144, 53, 134, 109))
    r.initialize(frame, (144, 53, 134, 109))
    bad = [
        ((frame, (144, 53, -1, 109)), "box"),
        ((frame, (144, 53, 134)), "box"),
        ((frame, (float("nan"), 53, 134, 109)), "box"),
        ((frame.astype(np.float64), (144, 53, 134, 109)), "frame must be uint8"),
        ((frame[:, :, :2], (144, 53, 134, 109)), "frame must be H x W x 3"),
        ((frame, "144 53 134 109"), "box must be 4 numbers"),
    ]
    for args, word in bad:
        with pytest.raises((ValueError, TypeError), match=word):
            r.refine(*args)
    with pytest.raises(ValueError, match="image_format"):
        r.refine(frame, (144, 53, 134, 109), image_format="HSV")


@pytest.mark.parametrize("backend_name", ["onnxruntime", "openvino"])
def test_engine_rejects_bad_crops_and_kernels(ar34, backend_name):
    eng = backend_refiner(ar34, backend_name).engine
    good = np.zeros((1, 256, 256, 3), np.uint8)
    with pytest.raises(ValueError, match=r"uint8 array \[B, 256, 256, 3\]"):
        eng.template(good.astype(np.float32))
    with pytest.raises(ValueError, match="kernels must be float32"):
        eng.search(np.zeros((2, 256, 256, 3), np.uint8), eng.template(good))


# ---------------------------------------------------------------------------- backend options
def test_unknown_backend_names_choices(checkpoint_path):
    from alpharefine_sdk import Refiner

    with pytest.raises(ValueError, match="openvino"):
        Refiner.from_pretrained(checkpoint_path, backend="tensorrt")


@pytest.mark.parametrize("backend_name", ["onnxruntime", "openvino"])
def test_bad_backend_options(backend_name, ar34, tmp_path):
    pytest.importorskip(RUNTIME[backend_name])
    from alpharefine_sdk.backends import make_engine

    def make(**kw):
        return make_engine(backend_name, ar34.net, ar34.config, **kw)

    with pytest.raises(ValueError, match="unknown option"):
        make(onnx_dir=export_dir(ar34), fast=True)
    with pytest.raises(ValueError, match="threads"):
        make(onnx_dir=export_dir(ar34), threads=0)
    with pytest.raises(ValueError, match="precision"):
        make(onnx_dir=export_dir(ar34), precision="fp16")
    with pytest.raises(FileNotFoundError, match="export.json"):
        make(onnx_dir=tmp_path)
    if backend_name == "onnxruntime":
        with pytest.raises(ValueError, match="openvino"):
            make(onnx_dir=export_dir(ar34), precision="bf16")


def test_onnx_dir_from_other_weights_refused(ar34):
    pytest.importorskip("onnxruntime")
    import copy

    import torch

    from alpharefine_sdk.backends import make_engine

    other = copy.deepcopy(ar34.net)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(ValueError, match="other weights"):
        make_engine("onnxruntime", other, ar34.config, onnx_dir=export_dir(ar34))


@pytest.mark.parametrize("backend_name,module", [("onnxruntime", "onnxruntime"), ("openvino", "openvino")])
def test_missing_runtime_names_the_extra(backend_name, module, checkpoint_path, monkeypatch):
    from alpharefine_sdk import MissingDependencyError, Refiner

    monkeypatch.setitem(sys.modules, module, None)  # makes ``import module`` fail like an absent package
    extra = "onnx" if module == "onnxruntime" else "openvino"
    with pytest.raises(MissingDependencyError, match=rf"alpharefine-sdk\[{extra}\]"):
        Refiner.from_pretrained(checkpoint_path, backend=backend_name)


def test_export_leaves_the_network_untouched(ar34):
    export_dir(ar34)
    assert not any(m.training for m in ar34.net.modules())
    assert all(not p.requires_grad for p in ar34.net.parameters())
