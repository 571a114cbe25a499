"""``--workers N`` gives exactly the serial results (spawned processes, one network each)."""

from __future__ import annotations

import shutil

import pytest
from conftest import CHECKPOINT, DATA, need

pytest.importorskip("cv2")
from alpharefine_sdk.cli import main  # noqa: E402


def test_workers_match_serial(tmp_path):
    """Two worker processes give exactly the serial results (MIL is randomised: the seed makes it repeat)."""
    data = tmp_path / "data"
    for name in ("otb/Crossing", "vot/ball1"):
        src = need(DATA / "sequences" / name)
        dst = data / name.split("/")[1]
        dst.mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file():
                shutil.copy(f, dst / f.name)
        sub = "img" if (src / "img").is_dir() else "color"
        (dst / sub).mkdir()
        for f in sorted((src / sub).iterdir())[:2]:
            shutil.copy(f, dst / sub / f.name)
        lines = (dst / ("groundtruth_rect.txt" if sub == "img" else "groundtruth.txt")).read_text().splitlines()[:2]
        (dst / ("groundtruth_rect.txt" if sub == "img" else "groundtruth.txt")).write_text("\n".join(lines) + "\n")
    common = [
        "eval",
        str(data),
        "--tracker",
        "mil",
        "--compare",
        "--weights",
        str(need(CHECKPOINT)),
        "-q",
        "--no-plots",
    ]
    assert main(common + ["-o", str(tmp_path / "serial")]) == 0
    assert main(common + ["-o", str(tmp_path / "par"), "--workers", "2"]) == 0
    for v in ("mil", "mil+AR"):
        for s in ("Crossing", "ball1"):
            a = (tmp_path / "serial/boxes" / v / f"{s}.txt").read_text()
            b = (tmp_path / "par/boxes" / v / f"{s}.txt").read_text()
            assert a == b and len(a.splitlines()) == 2
