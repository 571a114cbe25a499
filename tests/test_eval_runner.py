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
    assert res.summary["kcf+AR+gate"]["gated"] == 0.0
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
