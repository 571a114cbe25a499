"""Property tests (Hypothesis) over frames, boxes, options and configs.

Whatever the input, ``refine`` either answers a finite box with positive sides (inside the frame
when clipped) or raises ``TypeError``/``ValueError`` with a message; nothing else escapes.
CI runs a small fixed budget; a long hunt is one variable away::

    HYPOTHESIS_MAX_EXAMPLES=10000 python -m pytest -q tests/test_properties.py --hypothesis-show-statistics
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tiny import tiny_refiner

from alpharefine_sdk import WeightsError
from alpharefine_sdk.boxes import MAX_COORD, as_box, clip_box
from alpharefine_sdk.config import ModelConfig

MAX_EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "60"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REFINERS = {"tiny": tiny_refiner(seed=5)}  # random weights: its boxes are mostly degenerate


def refiner(kind: str):
    """``tiny`` (random, fast) or ``trained`` (the packaged model, ungated: real, non-degenerate boxes)."""
    if kind not in REFINERS:
        from alpharefine_sdk import Refiner

        REFINERS[kind] = Refiner.from_pretrained(None, device="cpu", gate=None, backend="torch")
    return REFINERS[kind].clone()


_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2000, 2000),
    st.floats(-2000, 2000),
    st.integers(-3000, 3000),
    st.sampled_from([0.0, -0.0, 0.5, 1e-300, 1e308, -1e308, MAX_COORD, MAX_COORD * 1.0001]),
)
boxes = st.one_of(
    st.tuples(_float, _float, _float, _float),
    st.lists(_float, min_size=0, max_size=6),
    st.tuples(st.floats(-50, 300), st.floats(-50, 300), st.floats(0.01, 400), st.floats(0.01, 400)),
    st.tuples(st.floats(-20, 70), st.floats(-20, 70), st.floats(0.01, 90), st.floats(0.01, 90)),
    st.tuples(st.floats(-20, 70), st.floats(-20, 70), st.floats(0.01, 90), st.floats(0.01, 90)),
    st.builds(lambda v: np.array(v).reshape(1, 4), st.lists(st.floats(0.1, 200), min_size=4, max_size=4)),
    st.sampled_from([None, "1,2,3,4", (1 + 1j, 2, 3, 4), (True, True, True, True), [[1, 2], [3, 4]], [1, [2], 3, 4]]),
)


@st.composite
def frames(draw):
    h = draw(st.integers(1, 80))
    w = draw(st.integers(1, 80))
    layout = draw(st.sampled_from(["hwc", "hw", "hw1", "hw4", "float", "empty"]))
    seed = draw(st.integers(0, 2**16))
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if layout == "hw":
        return img[:, :, 0]
    if layout == "hw1":
        return img[:, :, :1]
    if layout == "hw4":
        return np.concatenate([img, img[:, :, :1]], axis=2)
    if layout == "float":
        return img.astype(np.float32)
    if layout == "empty":
        return img[:0]
    return img


options = st.fixed_dictionaries(
    {
        "mask": st.booleans(),
        "clip": st.booleans(),
        "min_size": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 50), st.just("10")),
        "image_format": st.sampled_from(["RGB", "BGR", "rgb", "HSV", None]),
    }
)


def _checked(exc: BaseException) -> None:
    event(f"refused: {type(exc).__name__}")
    assert isinstance(exc, (TypeError, ValueError)), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


@st.composite
def plausible(draw):
    """A valid frame with boxes near it and sane options: most of these reach the network."""
    h, w = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    img = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = img if draw(st.booleans()) else img[:, :, 0]

    def near():
        return (
            draw(st.floats(-w / 2, w - 0.01)),
            draw(st.floats(-h / 2, h - 0.01)),
            draw(st.floats(0.01, 2.0 * w + 1)),
            draw(st.floats(0.01, 2.0 * h + 1)),
        )

    opts = {
        "mask": draw(st.booleans()),
        "clip": draw(st.booleans()),
        "min_size": draw(st.one_of(st.floats(1, 200), st.integers(1, 50))),
        "image_format": draw(st.sampled_from(["RGB", "BGR", "bgr", None])),
    }
    return frame, near(), near(), opts


wild = st.tuples(frames(), boxes, boxes, options)


@SETTINGS
@given(case=st.one_of(plausible(), plausible(), wild), kind=st.sampled_from(["tiny", "tiny", "trained"]))
def test_refine_answers_a_valid_box_or_a_clear_error(case, kind):
    frame, init_box, box, opts = case
    r = refiner(kind)
    try:
        r.initialize(frame, init_box)
    except Exception as e:  # noqa: BLE001 - the property is about which exceptions escape
        _checked(e)
        return
    try:
        res = r.refine(frame, box, **opts)
    except Exception as e:  # noqa: BLE001
        _checked(e)
        return
    event(f"refined ({kind}): " + (res.reason.split(":")[0] if res.gated else "network box"))
    b = res.box
    assert b.shape == (4,) and b.dtype == np.float64 and np.isfinite(b).all() and b[2] > 0 and b[3] > 0, res
    H, W = np.asarray(frame).shape[:2]
    if opts["clip"]:
        assert b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= W + 1e-9 and b[1] + b[3] <= H + 1e-9, (b, W, H)
    if opts["mask"]:
        assert res.mask.shape == (H, W) and res.mask.dtype == np.float32 and np.isfinite(res.mask).all()
    else:
        assert res.mask is None
    assert res.gated == (res.reason is not None)


@SETTINGS
@given(box=boxes)
def test_as_box_accepts_exactly_finite_positive_bounded_boxes(box):
    try:
        b = as_box(box)
    except Exception as e:  # noqa: BLE001
        _checked(e)
        return
    assert np.isfinite(b).all() and b[2] > 0 and b[3] > 0 and np.abs(b).max() <= MAX_COORD


@SETTINGS
@given(
    box=st.tuples(st.floats(-1e5, 1e5), st.floats(-1e5, 1e5), st.floats(-1e5, 1e5), st.floats(-1e5, 1e5)),
    h=st.integers(1, 5000),
    w=st.integers(1, 5000),
    min_size=st.floats(1, 1e5),
)
def test_clip_box_stays_inside_with_positive_sides(box, h, w, min_size):
    x, y, bw, bh = clip_box(box, (h, w), min_size)
    assert 0 <= x and 0 <= y and x + bw <= w + 1e-6 and y + bh <= h + 1e-6
    assert bw >= min(min_size, w) - 1e-6 and bh >= min(min_size, h) - 1e-6


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
preprocessing = st.dictionaries(
    st.sampled_from(["search_factor", "input_size", "mean", "std", "stride", "template_cells", "color", "other"]),
    st.one_of(
        json_values,
        st.floats(0, 10),
        st.integers(0, 600),
        st.lists(st.floats(-1, 2), min_size=3, max_size=3),
        st.sampled_from([16, 8, "RGB", 256, 128, 2.0]),
    ),
    max_size=5,
)


@SETTINGS
@given(
    pre=st.one_of(preprocessing, json_values),
    version=st.one_of(st.just(1), json_values),
    arch=st.one_of(st.just("mnv2_cm"), json_values),
    extra=st.one_of(st.just({}), json_values),
)
def test_config_is_valid_or_a_weights_error(pre, version, arch, extra):
    doc = {"format_version": version, "architecture": arch, "preprocessing": pre, "extra": extra}
    try:
        cfg = ModelConfig.from_dict(doc)
    except WeightsError as e:
        assert str(e).startswith("config.json")
        return
    p = cfg.preprocessing
    assert 1 <= p.search_factor <= 8 and 64 <= p.input_size <= 512 and p.input_size % 16 == 0
    assert all(0 <= m <= 1 for m in p.mean) and all(1e-3 <= s <= 10 for s in p.std)
    assert (p.stride, p.template_cells, p.color) == (16, 8, "RGB")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_degenerate_branch_is_exercised(seed):
    """Guards the refine property against passing vacuously: with random tiny weights plain refines
    hit the degenerate branch (the input box comes back, gated), so that branch really runs."""
    r = tiny_refiner(seed=seed)
    f = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    r.initialize(f, (20, 15, 30, 20))
    res = [r.refine(f, (20 + k, 15, 30, 20)) for k in range(5)]
    assert any(x.gated and x.reason.startswith("degenerate") for x in res)
    assert all(np.isfinite(x.box).all() and x.box[2] > 0 and x.box[3] > 0 for x in res)
