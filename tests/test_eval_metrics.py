"""Metrics cross-checked against the got10k toolkit's own report code on the same boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA, need

got10k = pytest.importorskip("got10k")
from got10k.experiments.got10k import ExperimentGOT10k  # noqa: E402
from got10k.experiments.otb import ExperimentOTB  # noqa: E402
from got10k.utils.metrics import center_error as g_center_error  # noqa: E402
from got10k.utils.metrics import rect_iou as g_rect_iou  # noqa: E402

from alpharefine_sdk.eval import metrics as M  # noqa: E402
from alpharefine_sdk.eval.datasets import find_sequences  # noqa: E402


def _perturb(gt: np.ndarray, seed: int, W: int, H: int) -> np.ndarray:
    """Tracker-like outputs: drifting, rescaled, some boxes partly outside the image, some misses."""
    rng = np.random.default_rng(seed)
    n = len(gt)
    drift = np.cumsum(rng.normal(0, 2.0, size=(n, 2)), axis=0)
    scale = np.exp(rng.normal(0, 0.15, size=(n, 2)))
    out = gt.copy()
    out[:, 2:] = gt[:, 2:] * scale
    out[:, :2] = gt[:, :2] + drift + (gt[:, 2:] - out[:, 2:]) / 2
    out[n // 3] = [W - 5, H - 5, 40, 40]  # hangs off the bottom-right corner
    out[n // 2] = [-15, -8, 30, 30]  # hangs off the top-left corner
    out[2 * n // 3] = [0, 0, 5, 5]  # a miss
    return out


@pytest.fixture(scope="module")
def cases():
    seqs = find_sequences(need(DATA / "sequences"))
    out = []
    for k, s in enumerate(seqs):
        H, W = s.frame(0).shape[:2]
        out.append((s.name, s.gt.copy(), _perturb(s.gt, k, W, H), (W, H)))
    return out


def test_iou_and_center_error_match_got10k(cases):
    for _, gt, pred, _ in cases:
        np.testing.assert_allclose(M.rect_iou(pred, gt), g_rect_iou(pred.copy(), gt.copy()), rtol=0, atol=1e-12)
        np.testing.assert_allclose(M.center_error(pred, gt), g_center_error(pred, gt), rtol=0, atol=1e-12)
        np.testing.assert_allclose(M.iou_pixel(pred, gt), M.rect_iou(pred, gt), atol=1e-9)
        bound = (640, 360)
        np.testing.assert_allclose(
            M.rect_iou(pred, gt, bound=bound), g_rect_iou(pred.copy(), gt.copy(), bound=bound), atol=1e-12
        )


class _Dataset(list):
    seq_names: list


def test_otb_report_matches_got10k(cases, tmp_path):
    exp = ExperimentOTB.__new__(ExperimentOTB)
    exp.nbins_iou, exp.nbins_ce = 21, 51
    exp.result_dir, exp.report_dir = str(tmp_path / "results"), str(tmp_path / "reports")
    exp.plot_curves = lambda names: None
    ds = _Dataset((None, gt) for _, gt, _, _ in cases)
    ds.seq_names = [n for n, *_ in cases]
    exp.dataset = ds
    (tmp_path / "results/T").mkdir(parents=True)
    for name, _, pred, _ in cases:
        np.savetxt(tmp_path / f"results/T/{name}.txt", pred, fmt="%.4f", delimiter=",")
    exp.report(["T"])
    perf = json.loads((tmp_path / "reports/T/performance.json").read_text())["T"]
    ours = []
    for name, gt, _, _ in cases:
        pred = np.loadtxt(tmp_path / f"results/T/{name}.txt", delimiter=",")  # same rounding as the toolkit saw
        m = M.sequence_metrics(pred, gt)
        ours.append(m)
        g = perf["seq_wise"][name]
        assert m["auc"] == pytest.approx(g["success_score"], abs=1e-12)
        assert m["precision"] == pytest.approx(g["precision_score"], abs=1e-12)
        np.testing.assert_allclose(m["success_curve"], g["success_curve"], atol=1e-12)
        np.testing.assert_allclose(m["precision_curve"], g["precision_curve"], atol=1e-12)
    summary = M.summarize(ours)
    assert summary["auc"] == pytest.approx(perf["overall"]["success_score"], abs=1e-12)
    assert summary["precision"] == pytest.approx(perf["overall"]["precision_score"], abs=1e-12)
    assert 0.05 < summary["auc"] < 0.95  # the perturbation gives a non-trivial curve


class _GotDataset(list):
    seq_names: list
    return_meta = True

    def __getitem__(self, key):
        if isinstance(key, str):
            key = self.seq_names.index(key)
        return list.__getitem__(self, key)


def test_got10k_ao_sr_match_got10k(cases, tmp_path):
    exp = ExperimentGOT10k.__new__(ExperimentGOT10k)
    exp.subset, exp.nbins_iou, exp.repetitions = "val", 101, 1
    exp.result_dir, exp.report_dir = str(tmp_path / "results"), str(tmp_path / "reports")
    exp.plot_curves = lambda files, names: None
    ds = _GotDataset()
    ds.seq_names = []
    ours = []
    for k, (name, gt, pred, (W, H)) in enumerate(cases):
        gt = gt.copy()
        cover = np.full(len(gt), 8)
        cover[5 + k] = 0  # one absent frame per sequence
        gt_ours = gt.copy()
        gt_ours[5 + k] = np.nan
        ds.append((None, gt, {"cover": cover, "resolution": f"({W}, {H})"}))
        ds.seq_names.append(name)
        d = tmp_path / "results/T" / name
        d.mkdir(parents=True)
        np.savetxt(d / f"{name}_001.txt", pred, fmt="%.4f", delimiter=",")
        np.savetxt(d / f"{name}_time.txt", np.full(len(gt), 0.01), fmt="%.6f")
        pred_r = np.loadtxt(d / f"{name}_001.txt", delimiter=",")
        m = M.sequence_metrics(pred_r, gt_ours, image_size=(W, H), times=np.full(len(gt), 0.01))
        ours.append(m)
    exp.dataset = ds
    perf = exp.report(["T"])["T"]
    for name, m in zip(ds.seq_names, ours):
        g = perf["seq_wise"][name]
        assert m["ao"] == pytest.approx(g["ao"], abs=1e-12)
        assert m["sr50"] == pytest.approx(g["sr"], abs=1e-12)
    s = M.summarize(ours)
    assert s["ao"] == pytest.approx(perf["overall"]["ao"], abs=1e-12)
    assert s["sr50"] == pytest.approx(perf["overall"]["sr"], abs=1e-12)
    assert s["fps"] == pytest.approx(100.0)  # frames / total time; got10k's mean(1/t) agrees for constant times
    assert perf["overall"]["speed_fps"] == pytest.approx(100.0)
    pooled = np.concatenate([m["ao_ious"] for m in ours])
    assert s["sr75"] == pytest.approx(float((pooled > 0.75).mean()))
    assert 0.05 < s["ao"] < 0.95


def test_pixel_iou_and_normalized_precision():
    gt = np.array([[10.0, 10, 10, 10]])
    pred = np.array([[15.0, 10, 10, 10]])
    assert M.rect_iou(pred, gt)[0] == pytest.approx(50 / 150)
    assert M.iou_pixel(pred, gt)[0] == pytest.approx(50 / 150)  # integer boxes: same
    small = np.array([[10.0, 10, 2, 2]]), np.array([[11.0, 10, 2, 2]])
    assert M.rect_iou(*small)[0] == pytest.approx(2 / 6)
    assert M.iou_pixel(*small)[0] == pytest.approx(2 / 6)
    # the "+1" cancels between the last pixel (x + w - 1) and the inclusive width (+ 1): for xywh
    # boxes pytracking's IoU equals the continuous one; it only matters when converting x1y1x2y2
    frac = np.array([[10.0, 10, 2.5, 2.5]]), np.array([[11.0, 10, 2.5, 2.5]])
    assert M.iou_pixel(*frac)[0] == pytest.approx(M.rect_iou(*frac)[0])
    # reading inclusive corners (x1, y1, x2, y2) as w = x2 - x1 + 1 vs x2 - x1 changes small boxes a lot
    xyxy_a, xyxy_b = (10, 10, 12, 12), (11, 10, 13, 12)
    incl = [np.array([[x1, y1, x2 - x1 + 1, y2 - y1 + 1]], float) for x1, y1, x2, y2 in (xyxy_a, xyxy_b)]
    excl = [np.array([[x1, y1, x2 - x1, y2 - y1]], float) for x1, y1, x2, y2 in (xyxy_a, xyxy_b)]
    assert M.rect_iou(*incl)[0] == pytest.approx(6 / 12) and M.rect_iou(*excl)[0] == pytest.approx(2 / 6)
    # normalised error: 5 px on a 10 px wide box = 0.5
    assert M.normalized_center_error(pred, gt)[0] == pytest.approx(0.5)
    curve = M.normalized_precision_curve(np.array([0.1, 0.2, 0.3]))
    assert curve[20] == pytest.approx(2 / 3) and curve[0] == 0


def test_nan_rows_are_skipped_and_init_frame_replaced():
    gt = np.array([[0, 0, 10, 10], [np.nan] * 4, [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    pred = np.array([[50, 50, 10, 10], [0, 0, 1, 1], [0, 0, 10, 10], [5, 0, 10, 10]], dtype=float)
    m = M.sequence_metrics(pred, gt)
    assert m["valid_frames"] == 3
    assert m["ao"] == pytest.approx((1 + 50 / 150) / 2)  # frames 2 and 3 only
    assert m["miou"] == pytest.approx(m["ao"])
    with pytest.raises(ValueError, match="one box per frame"):
        M.sequence_metrics(pred[:2], gt)


def test_mask_iou():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    assert M.mask_iou(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert M.mask_iou(a, b) == pytest.approx(4 / 12)


def test_paired_bootstrap_ci():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.3, 0.7, size=30)
    b = a + 0.05 + rng.normal(0, 0.01, size=30)
    r = M.paired_bootstrap_ci(a, b, n=2000, seed=0)
    assert r["low"] < 0.05 < r["high"] and r["low"] > 0.04 and r["p_le_0"] == 0.0
    assert r == M.paired_bootstrap_ci(a, b, n=2000, seed=0)
    null = M.paired_bootstrap_ci(a, a + rng.normal(0, 0.02, size=30), n=2000)
    assert null["low"] < 0 < null["high"]
    with pytest.raises(ValueError, match="equal-length"):
        M.paired_bootstrap_ci(a, b[:-1])
