"""One IoU and one mask-to-box for the whole package (``alpharefine_sdk.boxes``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpharefine_sdk.boxes import iou, mask_to_box
from alpharefine_sdk.eval.metrics import rect_iou

coord = st.floats(-50, 150, allow_nan=False)
size = st.floats(0.5, 80, allow_nan=False)
box = st.tuples(coord, coord, size, size)


@settings(max_examples=200, deadline=None)
@given(a=box, b=box)
def test_iou_properties(a, b):
    v = iou(a, b)
    assert isinstance(v, float) and 0.0 <= v <= 1.0 + 1e-12
    assert v == pytest.approx(iou(b, a))
    assert iou(a, a) == pytest.approx(1.0)
    shifted = (a[0] + a[2] + 1, a[1], a[2], a[3])  # touching nowhere
    assert iou(a, shifted) == 0.0


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.tuples(box, box), min_size=1, max_size=8))
def test_iou_broadcasts_and_is_the_metric(rows):
    A = np.array([r[0] for r in rows])
    B = np.array([r[1] for r in rows])
    vec = iou(A, B)
    assert vec.shape == (len(rows),)
    np.testing.assert_allclose(vec, [iou(a, b) for a, b in rows], atol=1e-12)
    np.testing.assert_allclose(rect_iou(A, B), vec, atol=1e-9)  # the evaluation uses the same IoU


def test_iou_degenerate_boxes():
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert iou((0, 0, -5, 3), (0, 0, 4, 4)) == 0.0


@settings(max_examples=100, deadline=None)
@given(x=st.integers(0, 30), y=st.integers(0, 20), w=st.integers(1, 20), h=st.integers(1, 10))
def test_mask_to_box_is_the_tight_pixel_box(x, y, w, h):
    m = np.zeros((32, 52), np.uint8)
    m[y : y + h, x : x + w] = 255
    np.testing.assert_array_equal(mask_to_box(m), [x, y, w, h])
    prob = m.astype(np.float32) / 255 * 0.9
    np.testing.assert_array_equal(mask_to_box(prob, 0.5), [x, y, w, h])
    assert mask_to_box(prob * 0.5, 0.5) is None


def test_mask_to_box_refuses_non_2d():
    assert mask_to_box(np.zeros((4, 4))) is None
    with pytest.raises(ValueError, match="2-D"):
        mask_to_box(np.zeros((4, 4, 3)))


def test_is_usable_is_the_one_box_test():
    from alpharefine_sdk.boxes import is_usable

    assert is_usable([1, 2, 3, 4]) and is_usable(np.array([0.0, 0.0, 1e-3, 1e-3]))
    for bad in ([1, 2, 0, 4], [1, 2, 3, -1], [np.nan, 0, 3, 4], [0, 0, np.inf, 1], [1, 2, 3], "abcd", None):
        assert not is_usable(bad), bad
