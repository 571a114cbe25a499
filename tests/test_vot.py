"""The VOT toolkit runs the refined tracker over TraX: a local workspace from two short real sequences
(one with box, one with mask ground truth), the toolkit's own ``vot evaluate`` and ``vot analysis``
offline, and the results it writes checked against the same runs made in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, need
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("cv2")
pytest.importorskip("trax", reason="vot-trax is not installed: pip install 'alpharefine-sdk[vot]'")
vot_io = pytest.importorskip("vot.region.io", reason="vot-toolkit is not installed (see docs/vot.md)")

from alpharefine_sdk.integrations.vot import VotTarget, encode_mask, mask_box, write_workspace  # noqa: E402

FRAMES = 6
# The toolkit's own command line; its start-up update check (a request to GitHub) is switched off:
# the machines that run the tests have no network.
VOT_MAIN = (
    "import sys; from vot.utilities import cli; cli.check_updates = lambda: (False, None); "
    "sys.argv = ['vot'] + sys.argv[1:]; cli.main()"
)


def vot(*args: str, cwd) -> str:
    r = subprocess.run(
        [sys.executable, "-c", VOT_MAIN, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VOT_WORKER_POOL_SIZE": "1"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_mask_encoding_matches_the_toolkit(h, w, seed, density):
    """Our VOT mask lines are the toolkit's own encoding and decode to the same pixels."""
    rng = np.random.default_rng(seed)
    m = (rng.random((h + 3, w + 2)) < density).astype(np.uint8)
    line = encode_mask(m)
    if not m.any():
        assert line == "m0,0,0,0,0"
        return
    (x, y, bw, bh), rle = vot_io.encode_mask(m)
    assert line == "m" + ",".join(str(int(v)) for v in (x, y, bw, bh, *rle))
    crop, (ox, oy) = vot_io.create_mask_from_string(line[1:].split(","))
    full = np.zeros_like(m)
    full[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] = crop
    assert np.array_equal(full > 0, m > 0)
    assert tuple(mask_box(m)) == (x, y, bw, bh)


def _full_mask(region, hw):
    out = np.zeros(hw, dtype=bool)
    ox, oy = region.offset
    r = np.asarray(region.mask) > 0
    out[oy : oy + r.shape[0], ox : ox + r.shape[1]] = r[: hw[0] - oy, : hw[1] - ox]
    return out


def test_vot_evaluate_and_analysis_offline(tmp_path):
    from alpharefine_sdk.cli import main
    from alpharefine_sdk.eval import load_sequence
    from alpharefine_sdk.eval.runs import run_base, run_refined
    from alpharefine_sdk.eval.trackers import make_factory
    from alpharefine_sdk.refiner import Refiner

    seqs = need(DATA / "sequences")
    ws = tmp_path / "ws"
    assert (
        main(
            [
                "vot",
                "workspace",
                str(ws),
                str(seqs),
                "--sequence",
                "ball1",
                "--sequence",
                "car-shadow",
                "--max-frames",
                str(FRAMES),
                "--tracker",
                "csrt",
                "--region",
                "mask",
            ]
        )
        == 0
    )
    assert (ws / "sequences" / "list.txt").read_text().split() == ["ball1", "car-shadow"]
    assert (ws / "sequences" / "car-shadow" / "groundtruth.txt").read_text().startswith("m")

    vot("evaluate", "--workspace", str(ws), "csrt_AR", "csrt", cwd=ws)
    vot("analysis", "--workspace", str(ws), "--format", "json", "--name", "check", "csrt_AR", "csrt", cwd=ws)

    def trajectory(tracker, seq):
        files = sorted((ws / "results" / tracker / "baseline" / seq).glob(f"{seq}_001.*"))
        files = [f for f in files if f.suffix in (".bin", ".txt")]
        assert len(files) == 1, f"no results of {tracker} on {seq}: {list((ws / 'results').rglob('*'))}"
        regions = vot_io.read_trajectory(str(files[0]))
        assert len(regions) == FRAMES
        return regions

    refiner = Refiner.from_pretrained(None, device="cpu")
    factory = make_factory("csrt")
    # ball1 (box ground truth): the plain tracker reports exactly the boxes `eval` computes
    ball1 = load_sequence(ws / "sequences" / "ball1")
    got = trajectory("csrt", "ball1")
    boxes = np.array([[r.x, r.y, r.width, r.height] for r in got[1:]])
    np.testing.assert_allclose(boxes, run_base(ball1, FRAMES, factory, 0)["base"]["boxes"][1:], atol=2e-3)
    # the refined tracker reports the refiner's masks, from the same runs as `eval`'s +AR rows
    shadow = load_sequence(need(seqs / "davis" / "JPEGImages" / "480p" / "car-shadow"))
    for seq, init, gt_masks in ((ball1, ball1.init_box, False), (shadow, mask_box(shadow.mask(0)), True)):
        target = VotTarget(factory, refiner, mask=True)
        target.init(seq.frame(0, "BGR"), init)
        got = trajectory("csrt_AR", seq.name)
        boxes = [init]
        for i in range(1, FRAMES):
            boxes.append(target.update(seq.frame(i, "BGR")).copy())
            ours = target.last_mask > 0.5
            theirs = _full_mask(got[i], ours.shape)
            assert (ours & theirs).sum() / max(1, (ours | theirs).sum()) > 0.99, (seq.name, i)
            if gt_masks:  # a real segmentation of the car
                gt = seq.mask(i)
                assert (theirs & gt).sum() / (theirs | gt).sum() > 0.5, (seq.name, i)
        if seq is ball1:
            seq.gt[0] = init
            expect = run_refined(seq, FRAMES, factory, refiner.clone(), 0, False, "auto")["boxes"]
            np.testing.assert_array_equal(np.array(boxes), expect)

    # the analysis the toolkit wrote: average accuracy per tracker and sequence
    report = json.loads((ws / "analysis" / "check.json").read_text())
    assert set(report["trackers"]) == {"csrt_AR", "csrt"}
    acc = report["results"]["baseline"]["results"][0]
    assert len(acc) == 2
    for per_tracker in acc:
        assert 0.3 < per_tracker[0] <= 1.0


def test_workspace_errors(tmp_path):
    seqs = need(DATA / "sequences")
    with pytest.raises(ValueError, match="unknown tracker"):
        write_workspace(tmp_path / "a", seqs, trackers=["nope"])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        write_workspace(tmp_path / "b", seqs)
    with pytest.raises(ValueError, match="region"):
        write_workspace(tmp_path / "c", seqs, region="polygon")
