"""``refine_many``: N targets on one frame in one batched pass equal N separate ``refine`` calls,
on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from test_backends_parity import BACKENDS, backend_refiner

from alpharefine_sdk import refine_many

# GOT-10k layout frames of the parity set: reference frame 2, test frame 3; three distinct templates
CASES = (5, 28, 39, 26)


def tol(box) -> float:
    """Half the parity tolerance (2e-3 crop px) mapped to the frame: batched maths may differ slightly."""
    return 1e-3 * max(1.0, 2 * box[2] / 256, 2 * box[3] / 256)


@pytest.fixture(scope="module", params=BACKENDS)
def targets(request, ar34, golden, parity_frames):
    """Refiners on one network, each initialised on its own target."""
    base = backend_refiner(ar34, request.param)
    refiners = []
    for case in CASES:
        r = base.clone()
        r.initialize(parity_frames[golden["ref_frame"][case]], golden["init_box"][case])
        refiners.append(r)
    boxes = [golden["input_box"][c] for c in CASES]
    return refiners, parity_frames[3], boxes


@pytest.mark.parametrize("mask", [False, True])
def test_equals_separate_calls(targets, mask):
    refiners, frame, boxes = targets
    many = refine_many(refiners, frame, boxes, mask=mask, clip=True)
    assert len(many) == len(refiners)
    for r, b, res in zip(refiners, boxes, many):
        one = r.refine(frame, b, mask=mask, clip=True)
        np.testing.assert_allclose(res.box, one.box, rtol=0, atol=tol(b))
        np.testing.assert_array_equal(res.input_box, one.input_box)
        assert res.gated == one.gated
        if mask:
            assert res.mask.shape == frame.shape[:2] and res.mask.dtype == np.float32
            np.testing.assert_allclose(res.mask, one.mask, rtol=0, atol=1e-5)
        else:
            assert res.mask is None and one.mask is None


def test_each_target_keeps_its_template(targets, golden):
    refiners, frame, boxes = targets
    # the same box refined with different templates gives different answers: kernels are not mixed up
    same = refine_many(refiners[:2], frame, [boxes[0], boxes[0]])
    assert not np.allclose(same[0].box, same[1].box, atol=1e-2)
    np.testing.assert_allclose(same[0].box, golden["box"][CASES[0]], rtol=0, atol=2e-3 * 164.25 * 2 / 256)
    np.testing.assert_allclose(same[1].box, refiners[1].refine(frame, boxes[0]).box, rtol=0, atol=tol(boxes[0]))


def test_one_and_zero_targets(targets):
    refiners, frame, boxes = targets
    assert refine_many([], frame, []) == []
    (res,) = refine_many(refiners[:1], frame, boxes[:1])
    np.testing.assert_allclose(res.box, refiners[0].refine(frame, boxes[0]).box, rtol=0, atol=tol(boxes[0]))


def test_bad_calls(ar34, targets, parity_frames):
    refiners, frame, boxes = targets
    with pytest.raises(ValueError, match="one box per refiner"):
        refine_many(refiners, frame, boxes[:-1])
    fresh = refiners[0].clone()
    with pytest.raises(RuntimeError, match=r"refiners\[1\] is not initialised"):
        refine_many([refiners[0], fresh], frame, boxes[:2])
    if refiners[0].engine is not ar34.engine:
        other = ar34.clone()
        other.initialize(parity_frames[2], boxes[0])
        with pytest.raises(ValueError, match=r"refiners\[1\] runs on another network"):
            refine_many([refiners[0], other], frame, boxes[:2])
    with pytest.raises(ValueError, match="box"):
        refine_many(refiners[:2], frame, [boxes[0], (1, 2, 0, 4)])
