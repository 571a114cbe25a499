"""``alpharefine-sdk track`` on a few real frames: the annotated video and the box files, checked for content."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import CHECKPOINT, DATA, need

cv2 = pytest.importorskip("cv2")
from alpharefine_sdk.cli import main  # noqa: E402
from alpharefine_sdk.cli.track import draw  # noqa: E402
from alpharefine_sdk.eval.datasets import load_sequence  # noqa: E402

CROSSING = DATA / "sequences/otb/Crossing"


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def test_track_sequence_folder(tmp_path, capsys):
    out = tmp_path / "out.avi"
    rc = main(
        [
            "track",
            str(need(CROSSING)),
            "--tracker",
            "kcf",
            "--max-frames",
            "3",
            "--no-mask",
            "-o",
            str(out),
            "-q",
        ]
    )  # the packaged model: the random parity weights give degenerate boxes here (the input box back)
    assert rc == 0
    assert "base box red, refined green" in capsys.readouterr().out
    base = np.loadtxt(tmp_path / "out_base.txt", delimiter=",")
    refined = np.loadtxt(tmp_path / "out_refined.txt", delimiter=",")
    seq = load_sequence(CROSSING)
    assert base.shape == refined.shape == (3, 4)
    np.testing.assert_allclose(base[0], seq.gt[0])
    np.testing.assert_allclose(refined[0], seq.gt[0])
    assert not np.allclose(base[1:], refined[1:])  # the refiner changed the boxes
    frames = _frames(out)
    assert len(frames) == 3 and frames[0].shape == (240, 360, 3)
    # the video shows exactly what draw() makes of the boxes on disk (MJPG is lossy: compare loosely)
    raw = seq.frame(2, "BGR")
    expected = draw(raw, base[2], refined[2], None, seq.gt[2], 2)
    diff_drawn = np.abs(frames[2].astype(int) - expected.astype(int)).mean()
    diff_raw = np.abs(frames[2].astype(int) - raw.astype(int)).mean()
    assert diff_drawn < 6 and diff_raw > diff_drawn + 1
    x, y, w, h = np.round(refined[2]).astype(int)
    edge = frames[2][y, x + 2 : x + w - 1].astype(int)  # top edge of the refined (green) box
    assert (edge[:, 1] > edge[:, 2] + 40).mean() > 0.5


def test_track_video_with_init(tmp_path):
    src = sorted(need(DATA / "sequences/vot/ball1/color").iterdir())[:3]
    video = tmp_path / "clip.avi"
    first = cv2.imread(str(src[0]))
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 12, (first.shape[1], first.shape[0]))
    for p in src:
        w.write(cv2.imread(str(p)))
    w.release()
    out = tmp_path / "res" / "tracked.mp4"
    rc = main(
        [
            "track",
            str(video),
            "--tracker",
            "csrt",
            "--init",
            "256,157,20,20",
            "--max-frames",
            "2",
            "-o",
            str(out),
            "--weights",
            str(need(CHECKPOINT)),
            "-q",
        ]
    )
    assert rc == 0
    frames = _frames(out)
    assert len(frames) == 2 and frames[0].shape == first.shape
    refined = np.loadtxt(tmp_path / "res/tracked_refined.txt", delimiter=",")
    assert refined.shape == (2, 4) and refined[0].tolist() == [256, 157, 20, 20] and np.isfinite(refined).all()
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12, abs=0.5)  # the input's frame rate is kept


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--init", "1,2,3"], "--init '1,2,3'"),
        (["--init", "1,2,0,4"], "w, h > 0"),
        (["-o", "out.gif"], "use a .mp4 or .avi"),
        (["--tracker", "tld9"], "unknown tracker"),
    ],
)
def test_track_errors(tmp_path, capsys, extra, message):
    argv = ["track", str(need(CROSSING)), "--weights", str(need(CHECKPOINT)), "-q", "--max-frames", "2"]
    if "-o" not in extra:
        argv += ["-o", str(tmp_path / "o.avi")]
    else:
        extra = [extra[0], str(tmp_path / extra[1])]
    assert main(argv + extra) == 1
    assert message in capsys.readouterr().err


def test_track_folder_without_ground_truth_needs_init(tmp_path, capsys):
    d = tmp_path / "frames"
    d.mkdir()
    for p in sorted(need(CROSSING / "img").iterdir())[:2]:
        shutil.copy(p, d / p.name)
    assert main(["track", str(d), "-o", str(tmp_path / "o.avi"), "--weights", str(need(CHECKPOINT))]) == 1
    assert "--init" in capsys.readouterr().err
