"""``backend="torch", compile=True`` (opt-in ``torch.compile``) gives the same boxes as the eager
engine on real frames of the repository's sample sequence. Needs a C++ compiler (Inductor's CPU
code generation); the first call compiles, about a minute on a 2-core CPU."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from alpharefine_sdk import Refiner
from alpharefine_sdk.cli._sample import sample_sequence
from alpharefine_sdk.eval.datasets import find_sequences

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile needs a C++ compiler"
)


def test_compiled_torch_engine_matches_eager_on_real_frames():
    seq = find_sequences(sample_sequence())[0]
    eager = Refiner.from_pretrained(device="cpu", backend="torch")
    compiled = Refiner.from_pretrained(device="cpu", backend="torch", compile=True)
    for r in (eager, compiled):
        r.initialize(seq.frame(0), seq.gt[0])
    for i in (3, 4):
        a = eager.refine(seq.frame(i), seq.gt[i])
        b = compiled.refine(seq.frame(i), seq.gt[i])
        assert np.isfinite(b.box).all()
        np.testing.assert_allclose(b.box, a.box, rtol=0, atol=1e-3)
