"""The learned confidence (IoU head, ``mnv2_cmi``): through the network, the torch engine,
``Refiner.refine`` / ``refine_many`` and the score rule of :class:`Gate`. Needs nothing outside
the repository (the sample sequence in ``data/``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "Crossing"


def _frames():
    gt = np.loadtxt(SAMPLE / "groundtruth_rect.txt", delimiter=",")
    img = lambda i: cv2.imread(str(SAMPLE / "img" / f"{i + 1:04d}.jpg"))  # noqa: E731
    return img(0), img(5), gt


@pytest.fixture(scope="module")
def cmi_folder(tmp_path_factory):
    """A random ``mnv2_cmi`` network saved as a model folder whose IoU head always rates the
    input box higher (bias), with a score-only gate in its config."""
    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.nn.registry import build_net
    from alpharefine_sdk.weights.io import save_model_folder

    torch.manual_seed(0)
    net = build_net("mnv2_cmi").eval()
    with torch.no_grad():
        net.iou_head.out.weight.zero_()
        net.iou_head.out.bias.copy_(torch.tensor([-2.0, 2.0]))  # refined ~0.12, input ~0.88
    gate = {"min_iou": 0.0, "area_ratio": [0.0, 1e9], "max_iou": 1.0, "score_margin": 0.0}
    cfg = ModelConfig(architecture="mnv2_cmi", extra={"gate": gate})
    return save_model_folder(net, cfg, tmp_path_factory.mktemp("cmi") / "model")


def test_engine_scores_match_the_network(cmi_folder):
    from alpharefine_sdk import Refiner

    r = Refiner.from_pretrained(cmi_folder, backend="torch", device="cpu", image_format="BGR")
    assert r.engine.scores
    f0, f5, gt = _frames()
    r.initialize(f0, gt[0])
    res = r.refine(f5, gt[5])
    assert res.score == pytest.approx(1 / (1 + np.exp(2)), abs=1e-5)
    assert res.input_score == pytest.approx(1 / (1 + np.exp(-2)), abs=1e-5)


def test_gate_keeps_the_input_box_the_model_rates_higher(cmi_folder):
    from alpharefine_sdk import Refiner

    r = Refiner.from_pretrained(cmi_folder, backend="torch", device="cpu", image_format="BGR")
    f0, f5, gt = _frames()
    r.initialize(f0, gt[0])
    res = r.refine(f5, gt[5])
    assert res.gated and np.array_equal(res.box, np.asarray(gt[5], dtype=np.float64))
    assert res.reason.startswith("gate") or res.reason.startswith("degenerate")
    r.gate = None  # ungated: the network's box whatever the scores (unless degenerate)
    free = r.refine(f5, gt[5])
    assert free.score == pytest.approx(res.score) and (not free.gated or free.reason.startswith("degenerate"))


def test_refine_many_scores_equal_single_calls(cmi_folder):
    from alpharefine_sdk import Refiner, refine_many

    r = Refiner.from_pretrained(cmi_folder, backend="torch", device="cpu", image_format="BGR")
    f0, f5, gt = _frames()
    others = [r.clone() for _ in range(3)]
    boxes = [gt[5] + [k, -k, 2 * k, k] for k in range(3)]
    for o in others:
        o.initialize(f0, gt[0])
    many = refine_many(others, f5, boxes)
    for o, b, m in zip(others, boxes, many):
        one = o.refine(f5, b)
        assert one.score == pytest.approx(m.score, abs=1e-5) and one.input_score == pytest.approx(
            m.input_score, abs=1e-5
        )
        np.testing.assert_allclose(one.box, m.box, atol=1e-3)


def test_gate_score_rule():
    from alpharefine_sdk.gate import Gate

    box, other = np.array([10.0, 10, 40, 30]), np.array([12.0, 11, 38, 31])
    g = Gate(min_iou=0.0, area_ratio=(0.0, float("inf")), max_iou=1.0, score_margin=-0.1)
    assert g.accept(box, other)  # no scores: the geometric rules only
    # a negative margin favours the input box: the refined box must be rated more than 0.1 higher
    assert g.accept(box, other, (0.95, 0.8))
    assert not g.accept(box, other, (0.85, 0.8))
    assert not g.accept(box, other, (0.8, 0.85))
    assert Gate(score_margin=None).accept(box, other, (0.0, 1.0))  # scores ignored
    for bad in (2.0, "0.1", float("nan")):
        with pytest.raises(ValueError, match="score_margin"):
            Gate(score_margin=bad)


def test_models_without_an_iou_head_have_no_score():
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.backends import make_engine
    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.nn.registry import build_net

    cfg = ModelConfig(architecture="mnv2_cm")
    engine = make_engine("torch", build_net("mnv2_cm").eval(), cfg, device="cpu")
    r = Refiner(engine, cfg, image_format="BGR", gate=None)
    f0, f5, gt = _frames()
    r.initialize(f0, gt[0])
    res = r.refine(f5, gt[5])
    assert res.score is None and res.input_score is None


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_engines_carry_the_scores(cmi_folder, backend, tmp_path, monkeypatch):
    """The ONNX export of an IoU-head network takes the input box and returns the IoUs: the
    default (exported) engines give the same boxes and scores as torch fp32."""
    pytest.importorskip({"onnxruntime": "onnxruntime", "openvino": "openvino"}[backend])
    from alpharefine_sdk import Refiner

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    f0, f5, gt = _frames()
    ref = Refiner.from_pretrained(cmi_folder, backend="torch", device="cpu", image_format="BGR", gate=None)
    eng = Refiner.from_pretrained(cmi_folder, backend=backend, image_format="BGR", gate=None)
    assert eng.engine.scores
    for r in (ref, eng):
        r.initialize(f0, gt[0])
    a, b = ref.refine(f5, gt[5] + [3, -2, 4, 1], mask=True), eng.refine(f5, gt[5] + [3, -2, 4, 1], mask=True)
    assert abs(a.score - b.score) < 1e-5 and abs(a.input_score - b.input_score) < 1e-5
    np.testing.assert_allclose(a.box, b.box, atol=1e-3)
    np.testing.assert_allclose(a.mask, b.mask, atol=1e-4)


@pytest.fixture(scope="module", params=["mnv2_cmi", "mnv2_cmi2", "mnv2_cmi3", "mnv2_cmi4"])
def cmi_folder_192(tmp_path_factory, request):
    """A random IoU-head network with 192 px crops (search factor 1.5): its 12x12 maps are pooled
    to the IoU head's 8x8 grid, a size ratio the ONNX exporters refuse as adaptive pooling; for
    ``mnv2_cmi2``-``mnv2_cmi4`` the box-sampling, edge and fine corner branches are switched on
    (random instead of their zero start)."""
    from alpharefine_sdk.config import ModelConfig, Preprocessing
    from alpharefine_sdk.nn.registry import build_net
    from alpharefine_sdk.weights.io import save_model_folder

    arch = request.param
    torch.manual_seed(1)
    net = build_net(arch).eval()
    with torch.no_grad():
        if arch != "mnv2_cmi":
            net.iou_head.box_out.weight.normal_(0, 0.5)
        if arch == "mnv2_cmi3":
            net.iou_head.edge_fc.weight.normal_(0, 0.05)
        if arch == "mnv2_cmi4":
            for tower in (net.corner_head.fine_tl, net.corner_head.fine_br):
                tower[-1].weight.normal_(0, 0.05)
    cfg = ModelConfig(architecture=arch, preprocessing=Preprocessing(search_factor=1.5, input_size=192))
    return save_model_folder(net, cfg, tmp_path_factory.mktemp(arch) / "model")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_engines_carry_the_scores_for_192_px_crops(cmi_folder_192, backend, tmp_path, monkeypatch):
    pytest.importorskip({"onnxruntime": "onnxruntime", "openvino": "openvino"}[backend])
    from alpharefine_sdk import Refiner

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    f0, f5, gt = _frames()
    ref = Refiner.from_pretrained(cmi_folder_192, backend="torch", device="cpu", image_format="BGR", gate=None)
    eng = Refiner.from_pretrained(cmi_folder_192, backend=backend, image_format="BGR", gate=None)
    for r in (ref, eng):
        r.initialize(f0, gt[0])
    box = gt[5] + [3, -2, 4, 1]
    a, b = ref.refine(f5, box), eng.refine(f5, box)
    assert 0 < a.score < 1 and 0 < a.input_score < 1
    assert abs(a.score - b.score) < 1e-5 and abs(a.input_score - b.input_score) < 1e-5
    np.testing.assert_allclose(a.box, b.box, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), grid=st.integers(1, 12))
def test_adaptive_mean_equals_adaptive_pooling(h, w, grid):
    """The IoU head's pooling equals ``F.adaptive_avg_pool2d`` for every map size, dividing or not."""
    import torch.nn.functional as F

    from alpharefine_sdk.nn.heads import adaptive_mean

    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h * 41 + w))
    torch.testing.assert_close(adaptive_mean(x, grid), F.adaptive_avg_pool2d(x, grid), atol=1e-5, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    box=st.tuples(*[st.floats(-0.3, 1.3, allow_nan=False)] * 4),
    cells=st.integers(1, 30),
    grid=st.integers(1, 7),
    context=st.floats(0.5, 2.0),
)
def test_box_sampling_equals_grid_sample(box, cells, grid, context):
    """The aligned IoU head's box sampling (two matrix products) equals bilinear ``grid_sample``
    with zero padding at the same points, for boxes inside, across and outside the map."""
    import torch.nn.functional as F

    from alpharefine_sdk.nn.heads import sample_box

    x1, y1, x2, y2 = box
    b = torch.tensor([[min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)]])
    f = torch.randn(1, 3, cells, cells, generator=torch.Generator().manual_seed(cells))
    mine = sample_box(f, b, grid, context)
    t = (torch.arange(grid) + 0.5) / grid * 2 - 1
    mid, half = (b[0, :2] + b[0, 2:]) / 2, (b[0, 2:] - b[0, :2]) * context / 2
    gx, gy = (mid[0] + half[0] * t) * 2 - 1, (mid[1] + half[1] * t) * 2 - 1
    points = torch.stack([gx[None, :].expand(grid, grid), gy[:, None].expand(grid, grid)], dim=-1)[None]
    ref = F.grid_sample(f, points, align_corners=False, padding_mode="zeros")
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    boxes=st.lists(st.tuples(*[st.floats(-0.3, 1.3, allow_nan=False)] * 4), min_size=1, max_size=3),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    grid=st.integers(1, 6),
)
def test_many_boxes_per_map_equal_grid_sample(boxes, h, w, grid):
    """``sample_boxes`` (K boxes per map in one pass, square or not) equals ``grid_sample`` at each
    box's points: the batched form the IoU head runs is the same bilinear RoI-align."""
    import torch.nn.functional as F

    from alpharefine_sdk.nn.heads import sample_boxes

    b = torch.tensor([[min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)] for x1, y1, x2, y2 in boxes])
    f = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h * 31 + w))
    mine = sample_boxes(f, b[None].expand(2, -1, -1), grid, 1.25)
    assert mine.shape == (2, len(boxes), 3, grid, grid)
    t = (torch.arange(grid) + 0.5) / grid * 2 - 1
    for k in range(len(boxes)):
        mid, half = (b[k, :2] + b[k, 2:]) / 2, (b[k, 2:] - b[k, :2]) * 1.25 / 2
        gx, gy = (mid[0] + half[0] * t) * 2 - 1, (mid[1] + half[1] * t) * 2 - 1
        pts = torch.stack([gx[None, :].expand(grid, grid), gy[:, None].expand(grid, grid)], dim=-1)
        ref = F.grid_sample(f, pts[None].expand(2, -1, -1, -1), align_corners=False, padding_mode="zeros")
        torch.testing.assert_close(mine[:, k], ref, atol=1e-5, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 3), h=st.integers(1, 20), w=st.integers(1, 20), stride=st.sampled_from([4, 8, 16]))
def test_soft_argmax_is_the_expected_cell_position(k, h, w, stride):
    """``soft_argmax`` over K maps at once: for each map, the softmax-weighted mean of the cells'
    ``(stride*col, stride*row)``, written out element by element."""
    from alpharefine_sdk.nn.heads import soft_argmax

    s = torch.randn(2, k, h, w, generator=torch.Generator().manual_seed(k * 400 + h * 20 + w)) * 3
    out = soft_argmax(s, stride)
    assert out.shape == (2, 2 * k) and out.dtype == torch.float32
    p = torch.softmax(s.double().reshape(2, k, -1), dim=-1).reshape(2, k, h, w)
    cols = torch.arange(w, dtype=torch.float64) * stride
    rows = torch.arange(h, dtype=torch.float64) * stride
    ref = torch.stack([(p * cols).sum((-1, -2)), (p * rows[:, None]).sum((-1, -2))], dim=-1).reshape(2, 2 * k)
    torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 16), scale=st.floats(0.1, 8.0))
def test_fine_cells_read_nearest_upsampled_logits_as_the_coarse_map(h, w, scale):
    """``FineCornerHead``'s reading (8 px cells shifted -4 px) of nearest-upsampled logits gives the
    coarse map's corners (16 px cells), for any logits: why the fine head starts as its coarse one."""
    import torch.nn.functional as F

    from alpharefine_sdk.nn.heads import soft_argmax

    s = torch.randn(2, 2, h, w, generator=torch.Generator().manual_seed(h * 17 + w)) * scale
    fine = F.interpolate(s, scale_factor=2.0, mode="nearest")
    torch.testing.assert_close(soft_argmax(fine, 8, -4.0), soft_argmax(s, 16), atol=2e-4, rtol=1e-5)


@pytest.mark.parametrize(
    "old_arch, new_arch, tol",
    [("mnv2_cmi", "mnv2_cmi2", 0.0), ("mnv2_cmi2", "mnv2_cmi3", 0.0), ("mnv2_cmi2", "mnv2_cmi4", 1e-3)],
)
def test_a_finer_head_starts_as_the_model_it_is_initialised_from(tmp_path, old_arch, new_arch, tol):
    """``mnv2_cmi2`` built from an ``mnv2_cmi`` model's weights (``mnv2_cmi3`` from ``mnv2_cmi2``)
    predicts exactly what it did (the new branch starts at zero); training then changes only the IoU
    head (tests/test_train.py). ``mnv2_cmi4`` (corners read from a finer map) gives the same corners
    up to float rounding (``tol`` px), so IoUs as close."""
    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.nn.registry import build_net
    from alpharefine_sdk.training.trainer import init_weights
    from alpharefine_sdk.weights.io import save_model_folder

    torch.manual_seed(3)
    old = build_net(old_arch).eval()
    if old_arch == "mnv2_cmi2":  # its own box branch on, so the comparison is not of zeros
        with torch.no_grad():
            old.iou_head.box_out.weight.normal_(0, 0.5)
    folder = save_model_folder(old, ModelConfig(architecture=old_arch), tmp_path / "old")
    new = build_net(new_arch)
    init_weights(new, str(folder))
    new.eval()
    t, s = torch.randn(2, 3, 256, 256), torch.randn(2, 3, 256, 256)
    box = torch.tensor([[40.0, 50, 200, 180], [90, 90, 160, 170]])
    with torch.no_grad():
        a = old.search_scored(s, old.template_kernel(t), box)
        b = new.search_scored(s, new.template_kernel(t), box)
    torch.testing.assert_close(b[0], a[0], atol=tol, rtol=0)
    torch.testing.assert_close(b[2], a[2], atol=tol, rtol=0)


@settings(max_examples=50, deadline=None)
@given(
    x=st.floats(0.0, 0.6),
    y=st.floats(0.0, 0.6),
    w=st.floats(0.01, 0.4),
    h=st.floats(0.01, 0.4),
    band=st.floats(0.05, 0.3),
)
def test_edge_strips_straddle_each_edge(x, y, w, h, band):
    """Each strip is centred on its edge, ``2 * band`` x the side across it and the side along it."""
    from alpharefine_sdk.nn.heads import edge_strips

    box = torch.tensor([[[x, y, x + w, y + h]]], dtype=torch.float64)
    s = edge_strips(box, band)[0].numpy()
    assert s.shape == (4, 4)
    mid = (s[:, :2] + s[:, 2:]) / 2
    size = s[:, 2:] - s[:, :2]
    edges = [(x, y + h / 2), (x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h)]
    np.testing.assert_allclose(mid, edges, atol=1e-9)
    np.testing.assert_allclose(size, [(2 * band * w, h), (w, 2 * band * h)] * 2, atol=1e-9)
