"""The default path (``backend="auto"``, the packaged model) against exact torch fp32, on the
parity cases and on every dev sequence; the ONNX export cache; the engine contract (options,
the ``Engine`` protocol, ``optimize() -> save_pretrained -> from_pretrained``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import DATA, need

from alpharefine_sdk import Refiner, refine_many
from alpharefine_sdk.backends import AUTO_ORDER, auto_backend, installed, make_engine
from alpharefine_sdk.backends.base import Engine

BOX_TOL = 1e-3  # frame pixels
MASK_TOL = 1e-4


@pytest.fixture(scope="module")
def default():
    """What ``Refiner.from_pretrained()`` gives: the packaged model on the default engine."""
    return Refiner.from_pretrained(gate=None)


@pytest.fixture(scope="module")
def exact(default):
    """Exact torch fp32: the loaded network itself, no folding, no layout change."""
    return Refiner.from_pretrained(gate=None, backend="torch", device="cpu", fold_bn=False, channels_last=False)


def _compare(default, exact, cases, chunk: int = 8) -> int:
    """Boxes and masks of both refiners on ``cases`` = [(frame0, box0, frame, box)], in batches.

    The crops, the template/search split and the map back to the frame are the refiner's own
    (``Refiner._prepare``, ``Refiner._result``); only the engine differs.
    """
    for start in range(0, len(cases), chunk):
        part = cases[start : start + chunk]
        out = []
        for r in (default, exact):
            t = np.concatenate([r._prepare(f0, b0, None)[3][None] for f0, b0, _, _ in part])
            prepared = [r._prepare(f, b, None) for _, _, f, b in part]
            e = r.engine
            k = e.template(t)
            corners, masks = e.search(np.stack([p[3] for p in prepared]), k, with_mask=True)
            out.append(
                [r._result(c, m, p[1], p[2], p[0].shape[:2], False, 10.0) for c, m, p in zip(corners, masks, prepared)]
            )
        for ra, rb in zip(*out):
            assert rb.network_box is not None
            err = float(np.abs(ra.network_box - rb.network_box).max())
            merr = float(np.abs(ra.mask - rb.mask).max())
            assert err < BOX_TOL, (err, rb.input_box)
            assert merr < MASK_TOL, (merr, rb.input_box)
    return len(cases)


def test_default_engine_is_the_fastest_exact_one_installed(default):
    want = next(b for b in AUTO_ORDER["fp32"] if b == "torch" or installed(b))
    if not torch.cuda.is_available():
        assert default.engine.name == want == auto_backend()
    assert isinstance(default.engine, Engine) and default.engine.precision == "fp32"


def test_default_path_equals_torch_fp32_on_the_parity_cases(default, exact, golden, parity_frames):
    cases = [
        (parity_frames[golden["ref_frame"][i]], golden["init_box"][i], parity_frames[golden["test_frame"][i]],
         golden["input_box"][i])
        for i in range(len(golden["case_name"]))
        if "outside" not in golden["case_tags"][i]
    ]  # fmt: skip
    assert _compare(default, exact, cases) >= 35


def test_default_path_equals_torch_fp32_on_the_dev_sequences(default, exact):
    from alpharefine_sdk.eval.datasets import find_sequences

    seqs = find_sequences(need(DATA / "sequences"))
    assert len(seqs) >= 7
    cases = []
    for seq in seqs:
        n = len(seq)
        # the input box is the previous frame's ground truth: a tracker one frame late
        for i in sorted({1, n // 3, (2 * n) // 3, n - 1}):
            if np.isfinite(seq.gt[i - 1]).all():
                cases.append((seq.frame(0), seq.init_box, seq.frame(i), seq.gt[i - 1]))
    assert _compare(default, exact, cases) >= 3 * len(seqs)


def test_refine_many_on_the_default_path_equals_single_calls(default, golden, parity_frames):
    refiners = [default.clone() for _ in range(5)]
    frame0, frame = parity_frames[golden["ref_frame"][0]], parity_frames[golden["test_frame"][0]]
    rng = np.random.default_rng(0)
    boxes = [golden["input_box"][0] + np.r_[rng.uniform(-8, 8, 2), 0, 0] for _ in refiners]
    for r in refiners:
        r.initialize(frame0, golden["init_box"][0])
    many = refine_many(refiners, frame, boxes, mask=True)
    for r, b, res in zip(refiners, boxes, many):
        one = r.refine(frame, b, mask=True)
        np.testing.assert_allclose(res.box, one.box, rtol=0, atol=BOX_TOL)
        np.testing.assert_allclose(res.mask, one.mask, rtol=0, atol=MASK_TOL)


# ------------------------------------------------------------------------------ export cache
@pytest.mark.skipif(not installed("onnxruntime"), reason="needs onnxruntime and onnx")
def test_onnx_export_is_made_once_and_kept_in_the_hf_cache(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf

    from alpharefine_sdk.backends import onnx_cache

    monkeypatch.setattr(hf, "HF_ASSETS_CACHE", str(tmp_path / "assets"))
    first = Refiner.from_pretrained(backend="onnxruntime")
    folder = first.engine.graph_dir
    assert folder.parent == tmp_path / "assets" / "alpharefine-sdk" / onnx_cache.NAMESPACE / "graphs"
    from alpharefine_sdk.backends.onnx_export import weights_fingerprint

    assert folder.name == weights_fingerprint(first.net)  # keyed by the weights' sha256
    assert {p.name for p in folder.iterdir()} >= {"template.onnx", "search_box.onnx", "search_mask.onnx"}
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_export(*a, **k):
        raise AssertionError("exported again although the cache holds these weights")

    monkeypatch.setattr(onnx_cache, "export_graphs", no_export)
    again = Refiner.from_pretrained()
    assert again.engine.graph_dir == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "work folder left behind"

    monkeypatch.undo()  # a damaged entry is exported again, in place
    monkeypatch.setattr(hf, "HF_ASSETS_CACHE", str(tmp_path / "assets"))
    (folder / "search_box.onnx").unlink()
    r = Refiner.from_pretrained()
    assert r.engine.graph_dir == folder and (folder / "search_box.onnx").is_file()


@pytest.mark.skipif(not installed("onnxruntime"), reason="needs onnxruntime and onnx")
def test_an_unwritable_cache_falls_back_to_a_temporary_export(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(hf, "HF_ASSETS_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning, match="not writable"):
        r = Refiner.from_pretrained()
    assert r.engine.name == "onnxruntime" and not str(r.engine.graph_dir).startswith(str(blocker))


# ------------------------------------------------------------------------------ engine contract
def test_unknown_engine_options_are_refused_with_the_valid_list(default):
    net, config = default.net, default.config
    with pytest.raises(ValueError, match=r"typo_option.*backend='torch'.*fold_bn, channels_last, compile"):
        make_engine("torch", net, config, device="cpu", typo_option=1)
    with pytest.raises(ValueError, match=r"typo_option.*backend='auto' \(which runs"):
        make_engine("auto", net, config, device="cpu", typo_option=1)
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        make_engine("tensorrt", net, config)
    with pytest.raises(ValueError, match="fold_bn must be True or False"):
        make_engine("torch", net, config, device="cpu", fold_bn="yes")


def test_onnxruntime_workers_spin_within_a_call_only(default):
    """Idle ONNX Runtime workers sleep between calls: they must not take the cores from the tracker
    that runs between two refines (``benchmarks/cpu.py``'s tracking-loop rows measure it)."""
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime not installed")
    for spin in (True, False):
        eng = make_engine("onnxruntime", default.net, default.config, spin=spin)
        so = eng._graphs["box"].get_session_options()
        assert so.get_session_config_entry("session.force_spinning_stop") == "1"
        assert so.get_session_config_entry("session.intra_op.allow_spinning") == ("1" if spin else "0")


def test_every_engine_satisfies_the_protocol(default):
    for backend in ("torch", "onnxruntime", "openvino"):
        if backend != "torch" and not installed(backend):
            continue
        eng = make_engine(backend, default.net, default.config, device="cpu")
        assert isinstance(eng, Engine), backend
        assert eng.net is default.net, "every engine keeps the network as loaded"


def test_optimize_save_pretrained_from_pretrained_round_trip(tmp_path, golden, parity_frames):
    r = Refiner.from_pretrained(gate=None)  # the default engine; optimize() swaps in the fast torch one
    frame0, frame = parity_frames[golden["ref_frame"][0]], parity_frames[golden["test_frame"][0]]
    r.initialize(frame0, golden["init_box"][0])
    want = r.refine(frame, golden["input_box"][0]).box
    r.optimize(precision="fp32")
    assert r.engine.name == "torch-fast"
    # the template computed by the first engine is carried over
    np.testing.assert_allclose(r.refine(frame, golden["input_box"][0]).box, want, rtol=0, atol=BOX_TOL)
    r.save_pretrained(tmp_path / "m")
    back = Refiner.from_pretrained(tmp_path / "m", backend="torch", device="cpu", gate=None)
    ref_sd, got_sd = r.net.state_dict(), back.net.state_dict()
    assert ref_sd.keys() == got_sd.keys()
    assert all(torch.equal(ref_sd[k], got_sd[k]) for k in ref_sd)
    back.initialize(frame0, golden["init_box"][0])
    np.testing.assert_allclose(back.refine(frame, golden["input_box"][0]).box, want, rtol=0, atol=BOX_TOL)


def test_save_pretrained_works_from_every_engine(default, tmp_path):
    default.save_pretrained(tmp_path / "m")
    back = Refiner.from_pretrained(tmp_path / "m", backend="torch", device="cpu")
    assert all(torch.equal(v, back.net.state_dict()[k]) for k, v in default.net.state_dict().items())


def test_refiners_on_every_engine_pickle_for_worker_processes(default, golden, parity_frames):
    """eval --workers and Ray ship refiners to other processes: the engine's sessions are rebuilt."""
    import pickle

    frame0, frame = parity_frames[golden["ref_frame"][0]], parity_frames[golden["test_frame"][0]]
    for backend in ("onnxruntime", "openvino"):
        if not installed(backend):
            continue
        r = Refiner.from_pretrained(backend=backend, gate=None)
        r.initialize(frame0, golden["init_box"][0])
        want = r.refine(frame, golden["input_box"][0]).box
        back = pickle.loads(pickle.dumps(r))
        assert back.engine.name == backend and back.engine.graph_dir == r.engine.graph_dir
        np.testing.assert_array_equal(back.refine(frame, golden["input_box"][0]).box, want)
