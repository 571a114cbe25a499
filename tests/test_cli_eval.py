"""``alpharefine-sdk eval`` end to end on a few real frames (parity weights: random, so the numbers only
test the mechanics), plus resume, worker processes and the error messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import CHECKPOINT, DATA, need

cv2 = pytest.importorskip("cv2")
from alpharefine_sdk.cli import main  # noqa: E402
from alpharefine_sdk.eval import metrics as M  # noqa: E402
from alpharefine_sdk.eval.datasets import load_sequence  # noqa: E402

CROSSING = DATA / "sequences/otb/Crossing"


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory):
    need(CROSSING)
    need(CHECKPOINT)
    out = tmp_path_factory.mktemp("eval")
    argv = [
        "eval",
        str(CROSSING),
        "--tracker",
        "kcf",
        "--compare",
        "--oracle",
        "--weights",
        str(CHECKPOINT),
        "--max-frames",
        "3",
        "-o",
        str(out),
        "-q",
    ]
    return out, argv


def test_eval_end_to_end(eval_run, capsys):
    out, argv = eval_run
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    for row in ("kcf ", "kcf+AR", "kcf@oracle ", "kcf@oracle+AR"):
        assert row in stdout
    assert "AUC" in stdout and "refine ms" in stdout and "kcf -> kcf+AR: AUC" in stdout

    res = json.loads((out / "results.json").read_text())
    assert res["variants"] == ["kcf", "kcf+AR", "kcf@oracle", "kcf@oracle+AR"]
    assert res["config"]["weights"] == str(CHECKPOINT) and res["config"]["max_frames"] == 3
    seq = load_sequence(CROSSING)
    gt = seq.gt[:3]
    per = res["sequences"]["Crossing"]
    assert per["frames"] == 3 and per["kind"] == "otb"
    for v in res["variants"]:
        boxes = np.loadtxt(out / "boxes" / v / "Crossing.txt", delimiter=",")
        assert boxes.shape == (3, 4) and np.isfinite(boxes).all()
        np.testing.assert_allclose(boxes[0], gt[0])  # frame 0 is the init box
        times = np.loadtxt(out / "boxes" / v / "Crossing_time.txt")
        assert times.shape == (3,) and times[0] == 0 and (times[1:] > 0).all()
        # the JSON numbers are the metrics of the box files on disk
        m = M.sequence_metrics(boxes, gt, image_size=(360, 240), times=times)
        for k in ("auc", "precision", "norm_precision", "ao", "sr50", "sr75", "miou"):
            assert per[v][k] == pytest.approx(m[k], abs=1e-3), (v, k)
        assert res["summary"][v]["auc"] == pytest.approx(m["auc"], abs=1e-3)  # one sequence: summary = sequence
        assert len(res["summary"][v]["success_curve"]) == 21 and len(res["summary"][v]["precision_curve"]) == 51
    summ = res["summary"]
    assert summ["kcf+AR"]["refine_ms"] > 0 and summ["kcf"]["refine_ms"] is None
    assert summ["kcf@oracle+AR"]["refine_ms"] > 0 and summ["kcf@oracle"]["refine_ms"] is None
    assert summ["kcf@oracle"]["fps"] == summ["kcf"]["fps"]  # same tracker run, same times
    assert summ["kcf@oracle+AR"]["fps"] < summ["kcf"]["fps"]  # plus the refiner's time

    # the oracle input: the plain tracker's size centred on the ground-truth centre
    base = np.loadtxt(out / "boxes/kcf/Crossing.txt", delimiter=",")
    oin = np.loadtxt(out / "boxes/kcf@oracle/Crossing.txt", delimiter=",")
    np.testing.assert_allclose(oin[1:, 2:], base[1:, 2:], atol=1e-3)
    np.testing.assert_allclose(oin[1:, :2] + oin[1:, 2:] / 2, gt[1:, :2] + gt[1:, 2:] / 2, atol=2e-3)

    table = (out / "table.md").read_text()
    assert table.startswith("| tracker") and "| kcf+AR" in table
    for png in ("success.png", "precision.png"):
        img = cv2.imread(str(out / png))
        assert img is not None and img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 10


def test_eval_resumes(eval_run, capsys):
    out, argv = eval_run
    if not (out / "results.json").is_file():
        assert main(argv) == 0
    record = out / "runs/kcf/Crossing.json"
    before = record.stat().st_mtime_ns
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert main(argv) == 0
    assert record.stat().st_mtime_ns == before  # loaded, not run again
    again = json.loads((out / "results.json").read_text())["summary"]
    for v in summary:
        for k in ("auc", "ao", "precision"):
            assert again[v][k] == summary[v][k]
    # other settings are not mixed up with the saved run: it runs again
    assert main(argv[:-5] + ["--max-frames", "2", "-o", str(out), "-q"]) == 0
    assert record.stat().st_mtime_ns != before
    assert json.loads(record.read_text())["frames"] == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tracker", "boosting9"], "unknown tracker 'boosting9'"),
        (["--tracker", "nano"], "--tracker-opt"),
        (["--tracker", "kcf", "--tracker-opt", "kcf=3"], "TRACKER.KEY=VALUE"),
        (["--tracker", "no_such_module:make"], "cannot import module"),
        (["--tracker", "kcf", "--workers", "0"], "--workers must be >= 1"),
        (["--tracker", "kcf", "--max-frames", "1"], "--max-frames must be >= 2"),
        (["--tracker", "kcf", "--sequence", "Nope"], "unknown sequence name"),
        (["--tracker", "kcf", "--gate", "x"], "--gate 'x'"),
    ],
)
def test_eval_errors(tmp_path, capsys, extra, message):
    rc = main(["eval", str(need(CROSSING)), "--weights", str(need(CHECKPOINT)), "-o", str(tmp_path), "-q"] + extra)
    assert rc == 1
    assert message in capsys.readouterr().err


def test_missing_dataset(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 1
    assert "dataset folder not found" in capsys.readouterr().err


def test_gate_option():
    from alpharefine_sdk.cli.evaluate import load_gate
    from alpharefine_sdk.gate import Gate

    assert load_gate("default") == Gate()
    assert load_gate("0.5").min_iou == 0.5
    assert load_gate("alpharefine_sdk.gate:Gate") == Gate()
