"""``eval --ray`` on a local Ray instance gives the results of ``--workers`` and resumes like it.

The trackers here (CSRT, KCF) draw no random numbers. MIL draws from the C library's ``rand()``, whose
one process-wide state Ray's own threads also draw from, so under Ray MIL's boxes are not exactly
repeatable (``docs/ray.md``).
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import CHECKPOINT, DATA, need

pytest.importorskip("cv2")
ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'alpharefine-sdk[ray]'")
from alpharefine_sdk.cli import main  # noqa: E402

FRAMES = 3
SEQUENCES = {
    "otb/Crossing": "img",
    "vot/ball1": "color",
    "vot/bolt1": "color",
    "got10k/bmx-trees": "",
    "lasot/soapbox": "img",
}
DAVIS = ("car-shadow", "blackswan")  # with masks: J is compared too
TIMING = {"fps", "refine_ms"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _copy(tmp_path):
    """The first frames of the seven dev sequences in their own layouts."""
    data = tmp_path / "data"
    for name, sub in SEQUENCES.items():
        src = need(DATA / "sequences" / name)
        dst = data / name.split("/")[1]
        frames = sorted(p for p in (src / sub if sub else src).iterdir() if p.suffix == ".jpg")[:FRAMES]
        (dst / sub if sub else dst).mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file() and f.suffix != ".jpg":
                lines = f.read_text().splitlines()
                keep = lines if f.name in ("sequence", "meta_info.ini", "nlp.txt") else lines[:FRAMES]
                if len(lines) == 1 and f.name in ("full_occlusion.txt", "out_of_view.txt"):  # LaSOT: one line
                    keep = [",".join(lines[0].split(",")[:FRAMES])]
                (dst / f.name).write_text("\n".join(keep) + "\n")
        for f in frames:
            shutil.copy(f, (dst / sub if sub else dst) / f.name)
    for name in DAVIS:
        for kind in ("JPEGImages", "Annotations"):
            src = need(DATA / "sequences" / "davis" / kind / "480p" / name)
            dst = data / "davis" / kind / "480p" / name
            dst.mkdir(parents=True)
            for f in sorted(src.iterdir())[:FRAMES]:
                shutil.copy(f, dst / f.name)
    return data


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def test_ray_matches_workers_and_resumes(tmp_path, local_ray):
    data = _copy(tmp_path)
    common = ["eval", str(data), "--tracker", "kcf", "--tracker", "csrt", "--compare", "-q", "--no-plots"]
    assert main(common + ["-o", str(tmp_path / "workers"), "--workers", "2"]) == 0
    assert main(common + ["-o", str(tmp_path / "ray"), "--ray"]) == 0
    a = json.loads((tmp_path / "workers" / "results.json").read_text())
    b = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert _strip_timing(a) == _strip_timing(b)
    assert len(a["sequences"]) == len(SEQUENCES) + len(DAVIS) and a["summary"]["csrt+AR"]["auc"] > 0.5
    assert a["summary"]["csrt+AR"]["mask_j"] is not None
    names = sorted(
        p.relative_to(tmp_path / "workers")
        for p in (tmp_path / "workers" / "boxes").rglob("*.txt")
        if not p.name.endswith("_time.txt")
    )
    assert len(names) == 3 * 2 * (len(SEQUENCES) + len(DAVIS))  # (plain, +AR, +AR+gate) x 2 trackers x sequences
    for rel in names:
        x, y = (tmp_path / "workers" / rel).read_text(), (tmp_path / "ray" / rel).read_text()
        assert x == y and len(x.splitlines()) == FRAMES, rel

    # resume: finished runs are read back, a missing one is run again
    runs = tmp_path / "ray" / "runs"
    kept = {p: p.stat().st_mtime_ns for p in runs.rglob("*.json")}
    lost = runs / "kcf" / "ball1.json"
    lost.unlink()
    (tmp_path / "ray" / "results.json").unlink()
    assert main(common + ["-o", str(tmp_path / "ray"), "--ray"]) == 0
    assert lost.is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items() if p != lost)
    c = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert _strip_timing(c) == _strip_timing(b)


def test_ray_sends_given_weights(tmp_path, local_ray):
    """Weights given by path are loaded once on the driver and sent to the actors: same boxes as serial."""
    data = _copy(tmp_path)
    common = ["eval", str(data), "--tracker", "csrt", "--sequence", "Crossing", "--sequence", "ball1", "-q",
              "--no-plots", "--max-frames", "2", "--weights", str(need(CHECKPOINT))]  # fmt: skip
    assert main(common + ["-o", str(tmp_path / "serial")]) == 0
    assert main(common + ["-o", str(tmp_path / "ray"), "--ray"]) == 0
    for s in ("Crossing", "ball1"):
        a = (tmp_path / "serial" / "boxes" / "csrt+AR" / f"{s}.txt").read_text()
        assert a == (tmp_path / "ray" / "boxes" / "csrt+AR" / f"{s}.txt").read_text() and len(a.splitlines()) == 2


def test_ray_needs_the_extra(monkeypatch, tmp_path, capsys):
    """Without ray the command says which extra to install (one line, no traceback)."""
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    data = _copy(tmp_path)
    assert (
        main(["eval", str(data), "--sequence", "Crossing", "-q", "--no-plots", "-o", str(tmp_path / "o"), "--ray"]) == 1
    )
    err = capsys.readouterr().err
    assert "alpharefine-sdk[ray]" in err and "Traceback" not in err
