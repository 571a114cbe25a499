"""Dataset readers on the real shared sequences and on small malformed copies made here."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SHARED, need

SEQ = DATA / "sequences"

cv2 = pytest.importorskip("cv2")
from alpharefine_sdk.eval.datasets import find_sequences, load_sequence, read_boxes  # noqa: E402


@pytest.fixture(scope="module")
def shared_seqs():
    return {s.name: s for s in find_sequences(need(DATA))}


def test_find_all_shared_sequences(shared_seqs):
    kinds = {n: s.kind for n, s in shared_seqs.items()}
    assert kinds == {
        "Crossing": "otb",
        "bolt1": "vot",
        "ball1": "vot",
        "bmx-trees": "got10k",
        "soapbox": "lasot",
        "car-shadow": "davis",
        "blackswan": "davis",
    }
    lengths = {n: len(s) for n, s in shared_seqs.items()}
    assert lengths == {
        "Crossing": 120,
        "bolt1": 90,
        "ball1": 70,
        "bmx-trees": 80,
        "soapbox": 99,
        "car-shadow": 40,
        "blackswan": 50,
    }
    for s in shared_seqs.values():
        assert s.gt.dtype == np.float64 and s.gt.shape == (len(s), 4)
        assert len(s.frame_paths) == len(s)


def test_otb_passes_through(shared_seqs):
    s = shared_seqs["Crossing"]
    first = [float(v) for v in (SEQ / "otb/Crossing/groundtruth_rect.txt").read_text().splitlines()[0].split(",")]
    assert s.gt[0].tolist() == first == [205, 151, 17, 50]
    assert s.frame_paths[0].name == "0001.jpg"
    img = s.frame(0)
    assert img.dtype == np.uint8 and img.shape == (240, 360, 3)
    bgr = s.frame(0, image_format="BGR")
    assert np.array_equal(img, bgr[:, :, ::-1])
    assert np.array_equal(bgr, cv2.imread(str(s.frame_paths[0])))


def test_vot_polygon_to_axis_aligned(shared_seqs):
    s = shared_seqs["bolt1"]
    v = [float(x) for x in (SEQ / "vot/bolt1/groundtruth.txt").read_text().splitlines()[0].split(",")]
    xs, ys = v[0::2], v[1::2]
    np.testing.assert_allclose(s.gt[0], [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])
    assert s.frame_paths[0].parent.name == "color"


def test_davis_box_is_tight_mask_box(shared_seqs):
    s = shared_seqs["blackswan"]
    m = s.mask(3)
    assert m.dtype == bool and m.shape == s.frame(3).shape[:2]
    ys, xs = np.nonzero(m)
    assert s.gt[3].tolist() == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    # the convenience boxes (computed before resizing) agree to about a pixel
    conv = np.loadtxt(SEQ / "davis/boxes/blackswan.txt", delimiter=",")
    assert np.abs(conv - s.gt).max() < 2.5


def test_got10k_and_lasot_flags(tmp_path):
    src = need(SEQ / "got10k/bmx-trees")
    dst = tmp_path / "got"
    shutil.copytree(src, dst)
    lab = ["0"] * 80
    lab[5] = "1"
    (dst / "absence.label").write_text("\n".join(lab) + "\n")
    s = load_sequence(dst)
    assert s.kind == "got10k" and s.absent.sum() == 1 and s.absent[5]
    assert np.isnan(s.gt[5]).all() and np.isfinite(s.gt[4]).all()

    dst2 = tmp_path / "las"
    shutil.copytree(SEQ / "lasot/soapbox", dst2)
    oov = ["0"] * 99
    oov[10] = oov[11] = "1"
    (dst2 / "out_of_view.txt").write_text(",".join(oov))
    s2 = load_sequence(dst2)
    assert s2.kind == "lasot" and s2.absent.nonzero()[0].tolist() == [10, 11]


def test_train_pack_loads():
    """Every sequence of the training pack's manifest loads, with its frame count and layout."""
    import json

    root = need(SHARED / "train")
    manifest = {m["name"]: m for m in json.loads((root / "manifest.json").read_text())["sequences"]}
    seqs = find_sequences(root)
    by = {s.name: s for s in seqs}
    assert set(by) == set(manifest)
    for name, m in manifest.items():
        assert len(by[name]) == m["frames"], name
        assert by[name].kind == ("davis" if m["layout"] == "davis" else "otb"), name
    assert by["bmx-bumps"].absent.sum() == 8 and by["surf"].absent.sum() == 1  # empty masks
    assert sum(s.absent.sum() for s in seqs if s.kind == "otb") > 0  # VOT-LT / UAV frames without the target


def _tiny_otb(tmp_path: Path, n: int = 4) -> Path:
    d = tmp_path / "Tiny"
    (d / "img").mkdir(parents=True)
    src = sorted((need(SEQ / "otb/Crossing/img")).iterdir())[:n]
    for p in src:
        shutil.copy(p, d / "img" / p.name)
    lines = (SEQ / "otb/Crossing/groundtruth_rect.txt").read_text().splitlines()[:n]
    (d / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return d


def test_malformed_line(tmp_path):
    d = _tiny_otb(tmp_path)
    lines = (d / "groundtruth_rect.txt").read_text().splitlines()
    lines[2] = "1,2,three,4"
    (d / "groundtruth_rect.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"groundtruth_rect.txt:3: malformed line"):
        load_sequence(d)
    lines[2] = "1,2,3"
    (d / "groundtruth_rect.txt").write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r":3: .*expected 4"):
        load_sequence(d)


def test_empty_ground_truth(tmp_path):
    d = _tiny_otb(tmp_path)
    (d / "groundtruth_rect.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="ground-truth file is empty"):
        load_sequence(d)


def test_missing_frames(tmp_path):
    d = _tiny_otb(tmp_path)
    (d / "img/0002.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="frame 0002.jpg is missing"):
        load_sequence(d)
    d2 = _tiny_otb(tmp_path / "b")
    (d2 / "img/0004.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="only 3 frames"):
        load_sequence(d2)


def test_unknown_layout_and_davis_root(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the layout"):
        load_sequence(tmp_path)
    with pytest.raises(ValueError, match="DAVIS root"):
        load_sequence(need(SEQ / "davis"))
    with pytest.raises(ValueError, match="kind must be one of"):
        load_sequence(SEQ / "otb/Crossing", kind="mot")


def test_frames_folder_and_video(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    src = sorted(need(SEQ / "vot/ball1/color").iterdir())[:5]
    for p in src:
        shutil.copy(p, d / p.name)
    with pytest.raises(FileNotFoundError, match="init_box"):
        load_sequence(d)
    s = load_sequence(d, init_box=(10, 20, 30, 40))
    assert s.kind == "frames" and len(s) == 5 and s.gt[0].tolist() == [10, 20, 30, 40] and np.isnan(s.gt[1:]).all()

    video = tmp_path / "clip.avi"
    first = cv2.imread(str(src[0]))
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0]))
    for p in src:
        w.write(cv2.imread(str(p)))
    w.release()
    (tmp_path / "clip.txt").write_text("5,6,7,8\n")
    v = load_sequence(video)
    assert v.kind == "video" and len(v) == 5 and v.frame_paths == [] and v.gt[0].tolist() == [5, 6, 7, 8]
    frames = list(v.frames())
    assert len(frames) == 5 and frames[0].shape == first.shape
    # lossy codec: close to the source frame
    assert np.abs(frames[2][:, :, ::-1].astype(int) - cv2.imread(str(src[2])).astype(int)).mean() < 12
    assert np.array_equal(v.frame(2), frames[2])  # random access matches sequential decode
    found = find_sequences(tmp_path)
    assert {s.name for s in found} == {"clip"}  # the frame folder has no ground truth: skipped


def test_read_boxes_nan_and_separators(tmp_path):
    f = tmp_path / "gt.txt"
    f.write_text("1 2 3 4\nnan,nan,nan,nan\n5\t6\t7\t8\n")
    b = read_boxes(f)
    assert b[0].tolist() == [1, 2, 3, 4] and np.isnan(b[1]).all() and b[2].tolist() == [5, 6, 7, 8]
