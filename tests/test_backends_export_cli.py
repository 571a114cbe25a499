"""``alpharefine-sdk export WEIGHTS OUT --format onnx [--mask]`` end to end on the parity checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from alpharefine_sdk.cli import main

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(checkpoint_path, tmp_path_factory):
    """One box-only export through the command line, verified with ONNX Runtime when installed."""
    out = tmp_path_factory.mktemp("export") / "onnx"
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["export", str(checkpoint_path), str(out), "--format", "onnx"])
    return rc, out, buf.getvalue()


def test_export_writes_graphs_and_manifest(exported):
    rc, out, printed = exported
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "export.json", "search_box.onnx", "template.onnx"]
    m = json.loads((out / "export.json").read_text())
    assert m["graphs"] == {"template": "template.onnx", "box": "search_box.onnx"}
    assert m["input_size"] == 256 and m["kernel_shape"] == [256, 8, 8] and m["opset"] == 17
    assert "wrote" in printed and "search_box.onnx" in printed
    import onnx

    g = onnx.load(str(out / "search_box.onnx"), load_external_data=False).graph
    assert [i.name for i in g.input] == ["images", "kernel"]
    assert [o.name for o in g.output] == ["scores", "corners"]
    dims = g.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 256, 256]


def test_exported_folder_serves_refiner(exported, checkpoint_path, golden, parity_frames):
    pytest.importorskip("onnxruntime")
    from alpharefine_sdk import Refiner

    rc, out, printed = exported
    assert "verified against PyTorch" in printed
    r = Refiner.from_pretrained(checkpoint_path, backend="onnxruntime", onnx_dir=out)
    case = 0
    r.initialize(parity_frames[golden["ref_frame"][case]], golden["init_box"][case])
    box, _ = r.refine(parity_frames[golden["test_frame"][case]], golden["input_box"][case])
    np.testing.assert_allclose(box, golden["box"][case], rtol=0, atol=2e-3)
    with pytest.raises(ValueError, match="--mask"):
        r.refine(parity_frames[golden["test_frame"][case]], golden["input_box"][case], mask=True)


def test_export_refuses_bad_arguments(exported, checkpoint_path, tmp_path, capsys):
    _, out, _ = exported
    assert main(["export", str(checkpoint_path), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(checkpoint_path), str(tmp_path / "a"), "--format", "tflite"]) == 1
    assert "--format must be one of ('onnx',)" in capsys.readouterr().err
    assert main(["export", str(checkpoint_path), str(tmp_path / "b"), "--opset", "7"]) == 1
    assert "opset must be an int in 13..20" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.pth.tar"), str(tmp_path / "c")]) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_command_is_registered():
    r = subprocess.run(
        [sys.executable, "-m", "alpharefine_sdk", "export", "--help"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0
    assert "--mask" in r.stdout and "--format" in r.stdout


def test_export_with_mask_adds_the_mask_graph(checkpoint_path, tmp_path, capsys):
    out = tmp_path / "with_mask"
    assert (
        main(["export", str(checkpoint_path), str(out), "--format", "onnx", "--mask", "--no-verify", "--opset", "18"])
        == 0
    )
    assert "search_mask.onnx" in capsys.readouterr().out
    import onnx

    g = onnx.load(str(out / "search_mask.onnx"), load_external_data=False).graph
    assert [o.name for o in g.output] == ["scores", "corners", "mask"]
    assert json.loads((out / "export.json").read_text())["opset"] == 18
    # --overwrite replaces our own earlier export, but never a folder holding other files
    assert main(["export", str(checkpoint_path), str(out), "--overwrite", "--no-verify"]) == 0
    assert not (out / "search_mask.onnx").exists()
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(checkpoint_path), str(out), "--overwrite", "--no-verify"]) == 1
    assert "not ours" in capsys.readouterr().err
