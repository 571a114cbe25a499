"""``alpharefine-sdk refine SEQUENCE``: the main job of the core issue, on a real sequence."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CHECKPOINT, DATA, need

pytest.importorskip("cv2")
from alpharefine_sdk.cli import main  # noqa: E402

CROSSING = DATA / "sequences/otb/Crossing"


def test_refine_with_the_packaged_default(tmp_path, capsys):
    out = tmp_path / "boxes.txt"
    assert main(["refine", str(need(CROSSING)), "--max-frames", "6", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    from alpharefine_sdk.weights.resolve import DEFAULT_MODEL

    assert f"weights: packaged default ({DEFAULT_MODEL})" in text
    assert "time per refine: median" in text and "mean IoU with ground truth" in text
    boxes = np.loadtxt(out, delimiter=",", ndmin=2)
    assert boxes.shape == (6, 4) and np.isfinite(boxes).all() and (boxes[:, 2:] > 0).all()


def test_refine_given_boxes_with_original_weights_and_mask(tmp_path, capsys):
    gt = np.loadtxt(need(CROSSING) / "groundtruth_rect.txt", delimiter=",", ndmin=2)[:4]
    given = tmp_path / "in.txt"
    np.savetxt(given, gt + [3.0, -2.0, 4.0, 2.0], delimiter=",")
    rc = main(
        [
            "refine",
            str(CROSSING),
            "--weights",
            str(need(CHECKPOINT)),
            "--boxes",
            str(given),
            "--max-frames",
            "4",
            "--mask",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "ar34_random.pth.tar" in text and "(with mask)" in text
    assert text.count("\n") >= 3 + 3  # header lines + one line per refined frame
