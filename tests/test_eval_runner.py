"""The Python API ``alpharefine_sdk.eval.evaluate`` with a loaded refiner, a gate and mask ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA, need

cv2 = pytest.importorskip("cv2")
from alpharefine_sdk.eval import evaluate, load_sequence  # noqa: E402
from alpharefine_sdk.eval.runs import oracle_input  # noqa: E402


class Always:
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    def accept(self, input_box, refined_box) -> bool:
        self.calls += 1
        return self.answer


@pytest.fixture(scope="module")
def swan():
    return load_sequence(need(DATA / "sequences/davis/JPEGImages/480p/blackswan"))


def test_gate_rows_and_masks(ar34, swan, tmp_path):
    res = evaluate([swan], ["kcf"], refiner=ar34, gate=Always(True), compare=False, max_frames=2, output=tmp_path)
    assert res.variants == ["kcf+AR", "kcf+AR+gate"]
    a = np.loadtxt(tmp_path / "boxes/kcf+AR/blackswan.txt", delimiter=",")
    b = np.loadtxt(tmp_path / "boxes/kcf+AR+gate/blackswan.txt", delimiter=",")
    np.testing.assert_array_equal(a, b)  # a gate that accepts everything changes nothing
    row = res.per_sequence["blackswan"]["kcf+AR"]
    assert row["mask_j"] is not None and 0.0 <= row["mask_j"] <= 1.0  # DAVIS masks give J
    # an accepting gate keeps no box beyond those whose network box was degenerate (random weights)
    assert res.summary["kcf+AR+gate"]["gated"] == res.summary["kcf+AR"]["gated"]
    assert "kcf" not in res.summary and res.comparisons == {}

    rejecting = Always(False)
    res2 = evaluate([swan], ["kcf"], refiner=ar34, gate=rejecting, compare=True, max_frames=2, masks=False)
    assert res2.variants == ["kcf", "kcf+AR", "kcf+AR+gate"]
    assert res2.summary["kcf+AR+gate"]["gated"] == 1.0
    assert res2.summary["kcf+AR"]["mask_j"] is None  # masks=False
    assert set(res2.comparisons) == {"kcf -> kcf+AR", "kcf -> kcf+AR+gate"}
    assert ar34.gate is None  # the shared refiner is left as it was


def test_oracle_input_is_centred_on_ground_truth():
    gt = np.array([10.0, 20, 30, 40])
    tracked = np.array([100.0, 100, 6, 8])
    box = oracle_input(gt, tracked)
    assert box.tolist() == [22.0, 36.0, 6.0, 8.0]


def test_bad_arguments(ar34, swan):
    with pytest.raises(ValueError, match="trackers is empty"):
        evaluate([swan], [], refiner=ar34)
    with pytest.raises(ValueError, match="workers must be"):
        evaluate([swan], ["kcf"], refiner=ar34, workers=0)
    with pytest.raises(ValueError, match="distinct names"):
        evaluate([swan], ["kcf", "kcf"], refiner=ar34)
    with pytest.raises(TypeError, match="list of Sequence"):
        evaluate([1, 2], ["kcf"], refiner=ar34)


class StaticTracker:
    """A pure-Python tracker with OpenCV's protocol: it reports the box it was last initialised with."""

    def init(self, frame, box):
        assert frame.ndim == 3 and frame.dtype == np.uint8
        self.box = tuple(float(v) for v in box)

    def update(self, frame):
        return True, self.box


def make_static(**options):
    assert options == {"tag": 7}
    return StaticTracker()


def test_importable_tracker_factory(tmp_path):
    from alpharefine_sdk import Refiner

    seq = load_sequence(need(DATA / "sequences/otb/Crossing"))
    # the packaged (trained) model: the random parity weights give degenerate boxes here, which
    # come back as the input box and would not move
    trained = Refiner.from_pretrained(None, device="cpu", gate=None)
    res = evaluate(
        [seq],
        ["test_eval_runner:make_static"],
        refiner=trained,
        max_frames=3,
        output=tmp_path,
        tracker_options={"test_eval_runner:make_static": {"tag": 7}},
        plots=False,
    )
    assert res.variants == ["make_static", "make_static+AR"]
    base = np.loadtxt(tmp_path / "boxes/make_static/Crossing.txt", delimiter=",")
    assert (base == seq.gt[0]).all()  # the static tracker never moves
    refined = np.loadtxt(tmp_path / "boxes/make_static+AR/Crossing.txt", delimiter=",")
    assert not np.allclose(refined[1:], seq.gt[0], atol=0.5)  # refined and written back: it moves
    with pytest.raises(ValueError, match="cannot import module"):
        evaluate([seq], ["no.such.module:make"], refiner=trained)
    with pytest.raises(ValueError, match="has no attribute"):
        evaluate([seq], ["test_eval_runner:nope"], refiner=trained)


def test_gate_auto_uses_the_models_recommended_gate(ar34, swan):
    """gate="auto" (default): a refiner that carries a gate adds the +AR+gate rows; one without adds none."""
    from alpharefine_sdk.gate import Gate

    plain = evaluate([swan], ["mil"], refiner=ar34, compare=False, max_frames=2, masks=False)
    assert plain.variants == ["mil+AR"]
    gated = ar34.clone()
    gated.gate = Gate(min_iou=0.99, area_ratio=(0.99, 1.01), max_iou=1.0)
    res = evaluate([swan], ["mil"], refiner=gated, compare=False, max_frames=2, masks=False)
    assert res.variants == ["mil+AR", "mil+AR+gate"]
    assert res.summary["mil+AR+gate"]["gated"] == 1.0  # random weights never land within 1 %
