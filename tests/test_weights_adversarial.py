"""No weight or config file can run code, hang or exhaust memory (issue 14, items 1 and 5-6).

An adversarial corpus is built here: pickle payloads in both torch containers, a real TorchScript
archive whose ``__setstate__`` writes a file, zip tricks, hostile tensor records and safetensors
header tricks. Each goes through every public entry point that loads weights; no marker file may
ever appear, and each failure is one :class:`WeightsError` (a ``ValueError``)."""

from __future__ import annotations

import copyreg
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny import ROOT_DATA
from weight_corpus import (
    Evil,
    Storage,
    Tensor,
    craft_legacy,
    craft_pickle,
    craft_zip,
    ext_pickle,
    floats,
    inst_pickle,
    safetensors_bytes,
    torchscript_archive,
)

from alpharefine_sdk import RefinedTracker, Refiner, WeightsError
from alpharefine_sdk.cli import main
from alpharefine_sdk.config import ModelConfig
from alpharefine_sdk.weights.io import read_safetensors
from alpharefine_sdk.weights.legacy import load_original_checkpoint

MAX_EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "40"))


# ------------------------------------------------------------------------------------ helpers
def _entry_points(path: Path, tmp: Path):
    """Every way a user hands us a weight file; each must refuse ``path`` with one clear error."""
    yield "load_original_checkpoint", lambda: load_original_checkpoint(path)
    yield "Refiner.from_pretrained", lambda: Refiner.from_pretrained(path, device="cpu")
    yield "RefinedTracker", lambda: RefinedTracker(lambda f: None, str(path))
    yield "cli convert", lambda: main(["convert", str(path), str(tmp / "converted")])
    yield (
        "cli eval --weights",
        lambda: main(
            [
                "eval",
                str(ROOT_DATA),
                "--weights",
                str(path),
                "-q",
                "--no-plots",
                "--max-frames",
                "2",
                "-o",
                str(tmp / "ev"),
            ]
        ),
    )


def refuse_everywhere(path: Path, tmp: Path, marker: Path, match: str, capsys=None) -> None:
    for name, call in _entry_points(path, tmp):
        if name.startswith("cli"):
            assert call() == 1, name
            if capsys is not None:
                err = capsys.readouterr().err
                assert err.count("\n") == 1 and "Traceback" not in err, (name, err)
                assert any(m in err for m in match.split("|")), (name, err)
        else:
            with pytest.raises(WeightsError, match=match):
                call()
        assert not marker.exists(), f"the payload ran through {name}"
    assert not (tmp / "converted").exists()


def tiny_state() -> dict:
    return {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}


# ------------------------------------------------------------------------------------ code execution
@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pickle_payload_never_runs(tmp_path, capsys, zip_format):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth.tar"
    torch.save({"net": tiny_state(), "settings": Evil(marker)}, path, _use_new_zipfile_serialization=zip_format)
    assert b"system" in path.read_bytes()
    refuse_everywhere(path, tmp_path, marker, "refus", capsys)


@pytest.mark.parametrize("name", ["ts.pth.tar", "SEcmnet_ep0040-c.ckpt", "weights.bin", "model.pt"])
def test_torchscript_archive_is_refused_and_never_runs(tmp_path, capsys, name):
    """A real TorchScript archive (torch.jit.save) whose __setstate__ writes a file; plain
    torch.load would dispatch it to torch.jit.load and run it (checked first, in a copy)."""
    marker = tmp_path / "pwned"
    path = torchscript_archive(tmp_path, marker, name)
    names = zipfile.ZipFile(path).namelist()
    assert any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names)
    proof = tmp_path / "proof"
    torch.jit.load(str(torchscript_archive(tmp_path, proof, "proof.pt")))
    assert proof.exists(), "the payload is real: torch.jit.load runs it"
    refuse_everywhere(path, tmp_path, marker, "TorchScript", capsys)


def test_torchscript_markers_alone_refuse(tmp_path):
    """``code/`` without ``constants.pkl`` (and the reverse) are enough to refuse."""
    benign = craft_pickle({"net": {"w": Tensor(Storage("0", 2), 0, (2,), (1,))}})
    for extra in ({"archive/code/__torch__/m.py": b"x = 1"}, {"archive/constants.pkl": pickle.dumps(())}):
        path = craft_zip(tmp_path / "x.pth.tar", None, {"0": floats(1, 2)}, pkl=benign, extra=extra)
        with pytest.raises(WeightsError, match="TorchScript"):
            load_original_checkpoint(path)


@pytest.mark.parametrize("kind", ["global", "ext", "inst", "reduce-builtin", "persistent"])
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_crafted_pickles_are_refused(tmp_path, request, kind, container):
    marker = tmp_path / "pwned"
    pkl = {
        "global": pickle.dumps(Evil(marker), protocol=2),
        "ext": ext_pickle(marker),
        "inst": inst_pickle(marker),
        "reduce-builtin": b"\x80\x02cbuiltins\neval\nX\x0b\x00\x00\x001+1\x85R.",
        "persistent": b"\x80\x02X\x03\x00\x00\x00abcQ.",  # a persistent id that is no storage
    }[kind]
    path = tmp_path / "c.pth.tar"
    if kind == "ext":  # registered while loading too, so the EXT opcode really reaches find_class
        copyreg.add_extension("os", "system", 0x7A51)
        request.addfinalizer(lambda: copyreg.remove_extension("os", "system", 0x7A51))
    if container == "zip":
        craft_zip(path, None, {}, pkl=pkl)
    else:
        craft_legacy(path, None, {}, pkl=pkl)
    with pytest.raises(WeightsError, match="refus|unknown persistent"):
        load_original_checkpoint(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------------ tensor records
def _net(t):
    return {"net": {"w": t}}


@pytest.mark.parametrize(
    "tensor, data, match",
    [
        (Tensor(Storage("0", 4), 0, (3, 3), (3, 1)), floats(1, 2, 3, 4), "past its data"),  # reads past
        (Tensor(Storage("0", 4), 3, (2,), (1,)), floats(1, 2, 3, 4), "past its data"),  # offset past
        (Tensor(Storage("0", 1), 0, (10**6, 10**6), (0, 0)), floats(1), "more memory"),  # stride-0 bomb
        (Tensor(Storage("0", 4), -1, (2,), (1,)), floats(1, 2, 3, 4), "offset"),
        (Tensor(Storage("0", 4), 0, (2, 2), (1,)), floats(1, 2, 3, 4), "do not match"),
        (Tensor(Storage("0", 4), 0, ("a",), (1,)), floats(1, 2, 3, 4), "non-negative ints"),
        (Tensor(Storage("../../etc/passwd", 4), 0, (4,), (1,)), floats(1, 2, 3, 4), "plain name"),
        (Tensor(Storage("0", 8), 0, (8,), (1,)), floats(1, 2, 3, 4), "holds 16 bytes"),  # short storage
        (Tensor(Storage("0", 4, torch.DoubleStorage), 0, (4,), (1,)), floats(1, 2, 3, 4), "holds 16 bytes"),
        (Tensor(Storage("1", 4), 0, (4,), (1,)), floats(1, 2, 3, 4), "missing"),  # no such entry
    ],
)
def test_hostile_tensor_records(tmp_path, tensor, data, match):
    path = craft_zip(tmp_path / "t.pth.tar", _net(tensor), {"0": data})
    with pytest.raises(WeightsError, match=match):
        load_original_checkpoint(path)


def test_tensors_read_exactly_like_torch(tmp_path):
    """Positive control: every dtype, views, offsets, shared and non-contiguous storages read back
    bit-exactly as torch.load(weights_only=True) reads them, in both containers."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "f32": base,
        "view": base[1:3, 2:5],  # offset and non-contiguous, shares base's storage
        "t": base.t(),
        "f16": torch.linspace(-2, 2, 7).half(),
        "bf16": torch.linspace(-2, 2, 5).bfloat16(),
        "f64": torch.rand(3, dtype=torch.float64),
        "i64": torch.tensor([1, -2, 3]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "param": torch.nn.Parameter(torch.ones(2)),
    }
    for zip_format in (True, False):
        path = tmp_path / f"ok{zip_format}.pth.tar"
        torch.save({"net": state, "epoch": 7}, path, _use_new_zipfile_serialization=zip_format)
        want = torch.load(path, weights_only=True)["net"]
        got = load_original_checkpoint(path)
        assert got.epoch == 7 and set(got.state_dict) == set(want)
        for k, v in want.items():
            g = got.state_dict[k]
            assert g.dtype == v.dtype and g.shape == v.shape and torch.equal(g, v.detach()), (zip_format, k)


def test_legacy_container_tricks(tmp_path):
    t = _net(Tensor(Storage("0", 2), 0, (2,), (1,)))
    ok = craft_legacy(tmp_path / "ok.pth.tar", t, {"0": floats(1, 2)})
    assert load_original_checkpoint(ok).state_dict["w"].tolist() == [1.0, 2.0]
    for name, kw, match in [
        ("count", dict(numels={"0": 3}), "elements"),
        ("keys", dict(keys=["0", "9"]), "storage list"),
        ("cut", dict(), "complete"),
    ]:
        path = craft_legacy(tmp_path / f"{name}.pth.tar", t, {"0": floats(1, 2)}, **kw)
        if name == "cut":
            path.write_bytes(path.read_bytes()[:-3])
        with pytest.raises(WeightsError, match=match):
            load_original_checkpoint(path)
    bad_magic = tmp_path / "magic.pth.tar"
    bad_magic.write_bytes(pickle.dumps(123, protocol=2) + ok.read_bytes()[20:])
    with pytest.raises(WeightsError):
        load_original_checkpoint(bad_magic)


def test_zip_tricks(tmp_path):
    t = _net(Tensor(Storage("0", 2), 0, (2,), (1,)))
    benign = craft_pickle(t)
    # duplicate entry names: the first benign data.pkl, the second evil
    dup = tmp_path / "dup.pth.tar"
    with zipfile.ZipFile(dup, "w") as z:
        z.writestr("archive/data.pkl", benign)
        with pytest.warns(UserWarning):
            z.writestr("archive/data.pkl", pickle.dumps(Evil(tmp_path / "pwned"), protocol=2))
        z.writestr("archive/data/0", floats(1, 2))
    with pytest.raises(WeightsError, match="duplicate"):
        load_original_checkpoint(dup)
    # two checkpoints in one archive, none, or one nested too deep
    two = craft_zip(tmp_path / "two.pth.tar", t, {"0": floats(1, 2)}, extra={"other/data.pkl": benign})
    with pytest.raises(WeightsError, match="exactly one"):
        load_original_checkpoint(two)
    nested = craft_zip(tmp_path / "nested.pth.tar", t, {"0": floats(1, 2)}, prefix="a/b")
    with pytest.raises(WeightsError, match="exactly one"):
        load_original_checkpoint(nested)
    # big-endian data, a compressed (deflate) archive reads fine, junk before the archive
    big = craft_zip(tmp_path / "big.pth.tar", t, {"0": floats(1, 2)}, byteorder=b"big")
    with pytest.raises(WeightsError, match="big-endian"):
        load_original_checkpoint(big)
    deflated = craft_zip(tmp_path / "d.pth.tar", t, {"0": floats(1, 2)}, compress=zipfile.ZIP_DEFLATED)
    assert load_original_checkpoint(deflated).state_dict["w"].tolist() == [1.0, 2.0]
    prepended = tmp_path / "pre.pth.tar"
    prepended.write_bytes(b"#!/bin/sh\n" + craft_zip(tmp_path / "p.zip", t, {"0": floats(1, 2)}).read_bytes())
    with pytest.raises(WeightsError):
        load_original_checkpoint(prepended)
    # a zip bomb: an entry that inflates far beyond its stored size is refused by its declared size
    bomb = tmp_path / "bomb.pth.tar"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", craft_pickle(_net(Tensor(Storage("0", 2), 0, (2,), (1,)))))
        z.writestr("archive/data/0", b"\0" * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(WeightsError, match="holds"):
        load_original_checkpoint(bomb)


def test_deep_nesting_and_garbage(tmp_path):
    deep = tmp_path / "deep.pth.tar"
    craft_zip(deep, None, {}, pkl=b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b".")
    with pytest.raises(WeightsError):
        load_original_checkpoint(deep)
    for i, junk in enumerate([b"", b"PK\x03\x04", b"\x80\x02", os.urandom(2048), b"PK\x05\x06" + bytes(18)]):
        p = tmp_path / f"junk{i}.pth.tar"
        p.write_bytes(junk)
        with pytest.raises(WeightsError):
            load_original_checkpoint(p)


# ------------------------------------------------------------------------------------ special files
@pytest.mark.timeout(60)
def test_fifo_device_folder_and_oversized_files(tmp_path):
    """A FIFO would block a plain read forever, /dev/zero would fill memory, a sparse 5 GiB file
    is over the limit: each is refused before anything is read."""
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    (tmp_path / "config.json").write_text("{}")
    for target in (fifo, tmp_path / "w.pth.tar"):
        if target != fifo:
            os.mkfifo(target)
        with pytest.raises(WeightsError, match="not a regular file"):
            Refiner.from_pretrained(target)
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    os.mkfifo(cfg_dir / "config.json")
    with pytest.raises(WeightsError, match="not a regular file"):
        ModelConfig.load(cfg_dir / "config.json")
    for special in ("/dev/zero", "/dev/urandom"):
        if os.path.exists(special):
            with pytest.raises(WeightsError, match="not a regular file"):
                ModelConfig.load(special)
            with pytest.raises(WeightsError, match="not a regular file"):
                Refiner.from_pretrained(special)
            with pytest.raises(WeightsError, match="not a regular file"):
                read_safetensors(special)
    folder_cfg = tmp_path / "f"
    (folder_cfg / "config.json").mkdir(parents=True)
    with pytest.raises(WeightsError, match="folder"):
        ModelConfig.load(folder_cfg / "config.json")
    huge = tmp_path / "huge.pth.tar"
    with open(huge, "wb") as f:
        f.truncate(5 << 30)  # sparse: no disk used
    with pytest.raises(WeightsError, match="over the 4 GiB limit"):
        Refiner.from_pretrained(huge)
    big_cfg = tmp_path / "big" / "config.json"
    big_cfg.parent.mkdir()
    with open(big_cfg, "wb") as f:
        f.truncate(2 << 20)
    with pytest.raises(WeightsError, match="limit"):
        ModelConfig.load(big_cfg)


# ------------------------------------------------------------------------------------ safetensors
@pytest.mark.parametrize(
    "blob, match",
    [
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4), "outside"),
        (safetensors_bytes({}, length=1 << 62), "does not fit"),
        (safetensors_bytes(b"{not json"), "corrupt header"),
        (safetensors_bytes(b"[" * 100_000 + b"]" * 100_000), "corrupt header|not a JSON object"),
        (safetensors_bytes([1, 2]), "not a JSON object"),
        (safetensors_bytes({"w": 5}), "not an object"),
        (safetensors_bytes({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0"), "F8_E4M3"),
        (safetensors_bytes({"w": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0"), "BOOL"),
        (safetensors_bytes({"w": {"dtype": "I8", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0"), "I8"),
        (safetensors_bytes({"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4), "I32"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b"\0" * 4), "outside"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4), "readable"),
        (b"\x01\x00", "shorter"),
    ],
)
def test_safetensors_header_tricks(tmp_path, blob, match):
    path = tmp_path / "model.safetensors"
    path.write_bytes(blob)
    with pytest.raises(WeightsError, match=match):
        read_safetensors(path)


def test_wrong_weight_dtypes_are_refused(tmp_path):
    """BOOL / I8 / I32 (and ints where the model has floats) are refused, naming the tensor."""
    from tiny import NAME, build_tiny, register

    from alpharefine_sdk.weights.io import save_model_folder
    from alpharefine_sdk.weights.state import check_state_dict

    register()
    net = build_tiny()
    folder = save_model_folder(net, ModelConfig(architecture=NAME), tmp_path / "m")
    assert Refiner.from_pretrained(folder, device="cpu", backend="torch").net is not None
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    key = next(k for k, v in sd.items() if v.is_floating_point())
    for dtype in (torch.bool, torch.int8, torch.int32, torch.int64):
        bad = dict(sd, **{key: sd[key].to(dtype)})
        with pytest.raises(WeightsError, match=f"{key}: file {dtype}"):
            check_state_dict(net, bad)
    counter = next(k for k, v in sd.items() if not v.is_floating_point())
    with pytest.raises(WeightsError, match=counter):
        check_state_dict(net, dict(sd, **{counter: sd[counter].float()}))
    check_state_dict(net, {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()})  # fp16 is fine


# ------------------------------------------------------------------------------------ fuzzing
def _valid_files(tmp: Path) -> dict:
    t = _net(Tensor(Storage("0", 4), 0, (2, 2), (2, 1)))
    return {
        "zip": craft_zip(tmp / "z.pth.tar", t, {"0": floats(1, 2, 3, 4)}).read_bytes(),
        "legacy": craft_legacy(tmp / "l.pth.tar", t, {"0": floats(1, 2, 3, 4)}).read_bytes(),
        "safetensors": safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, floats(1, 2)),
    }


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_weight_files_fail_cleanly(tmp_path, data):
    """Random byte flips, cuts and insertions in valid files of each format: the load either
    succeeds or raises WeightsError; nothing else escapes, nothing runs."""
    valid = _valid_files(tmp_path)
    kind = data.draw(st.sampled_from(sorted(valid)))
    blob = bytearray(valid[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "set"]))
        i = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if op == "flip" and blob:
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del blob[i:]
        elif op == "insert":
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        elif blob:
            blob[i] = data.draw(st.integers(0, 255))
    path = tmp_path / ("model.safetensors" if kind == "safetensors" else "m.pth.tar")
    path.write_bytes(bytes(blob))
    try:
        out = read_safetensors(path) if kind == "safetensors" else load_original_checkpoint(path).state_dict
    except WeightsError:
        return
    assert out and all(isinstance(v, torch.Tensor) for v in out.values())
