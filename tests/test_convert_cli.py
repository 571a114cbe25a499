"""``alpharefine-sdk convert``: original checkpoint -> our folder format (and optionally the Hub)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hub_server import LoopbackHub, point_hf_at, refuse_non_loopback, register_tiny, tiny_model_folder, unregister_tiny

from alpharefine_sdk import Refiner
from alpharefine_sdk.cli import main
from alpharefine_sdk.weights.io import CONFIG_NAME, WEIGHTS_NAME, read_safetensors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A tiny model folder: folder-to-folder conversions and pushes stay fast."""
    register_tiny()
    yield tiny_model_folder(tmp_path_factory.mktemp("cli_model") / "tiny", seed=3)
    unregister_tiny()


def _same_as(folder: Path, state_of) -> bool:
    state = read_safetensors(folder / WEIGHTS_NAME)
    ref = state_of if isinstance(state_of, dict) else state_of.net.state_dict()
    return state.keys() == ref.keys() and all(torch.equal(state[k], ref[k]) for k in ref)


def test_convert_original_checkpoint(checkpoint_path, ar34, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", str(checkpoint_path), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "architecture ar34_cm" in printed
    for name in (WEIGHTS_NAME, CONFIG_NAME, "README.md"):
        assert f"wrote {out / name}" in printed and (out / name).is_file()
    assert printed.count("sha256 ") == 3
    assert {p.name for p in out.iterdir()} == {WEIGHTS_NAME, CONFIG_NAME, "README.md"}
    assert _same_as(out, ar34)
    assert Refiner.from_pretrained(out, backend="torch", device="cpu").config.architecture == "ar34_cm"


def test_convert_refuses_a_non_empty_folder(model_folder, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["convert", str(model_folder), str(out)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert main(["convert", str(model_folder), str(out), "--overwrite"]) == 1  # not ours: still refused
    assert "not ours" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert main(["convert", str(model_folder), str(out)]) == 0
    assert main(["convert", str(model_folder), str(out), "--overwrite"]) == 0  # replaces an earlier save


def test_convert_missing_input(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.pth.tar"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alpharefine-sdk convert: error:") and "does not exist" in err


def test_convert_truncated_checkpoint(checkpoint_path, tmp_path, capsys):
    bad = tmp_path / "SEcmnet_ep0040-c.pth.tar"
    with open(checkpoint_path, "rb") as f:
        bad.write_bytes(f.read(1 << 20))
    assert main(["convert", str(bad), str(tmp_path / "o")]) == 1
    assert "could not read" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(tmp_path: Path, zip_format: bool) -> tuple:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth.tar"
    torch.save(
        {"net": {"w": torch.zeros(1)}, "constructor": _Evil(marker)}, evil, _use_new_zipfile_serialization=zip_format
    )
    assert b"system" in evil.read_bytes()  # the file really carries the os.system call
    return evil, marker


def test_convert_malicious_checkpoint_in_process(tmp_path, capsys):
    evil, marker = _evil_checkpoint(tmp_path, zip_format=True)
    assert main(["convert", str(evil), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "refused to load" in err and "system" in err and "may be malicious" in err
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_convert_malicious_legacy_checkpoint_cli(tmp_path):
    """Through the real entry point, in a fresh interpreter (legacy torch serialisation)."""
    evil, marker = _evil_checkpoint(tmp_path, zip_format=False)
    proc = subprocess.run(
        [sys.executable, "-m", "alpharefine_sdk", "convert", str(evil), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 1, proc.stderr
    assert "refused to load" in proc.stderr and "system" in proc.stderr, proc.stderr
    assert not marker.exists(), "the pickled os.system call ran"
    assert not (tmp_path / "o").exists()


def test_convert_and_push_to_hub(model_folder, tmp_path, monkeypatch, capsys):
    attempts = refuse_non_loopback(monkeypatch)
    with LoopbackHub(tmp_path / "hub", lifetime=120) as hub:
        point_hf_at(monkeypatch, hub.url, tmp_path / "home")
        out = tmp_path / "out"
        assert main(["convert", str(model_folder), str(out), "--push-to-hub", "org/converted"]) == 0
        printed = capsys.readouterr().out
        commit = hub.store.resolve("org/converted", "main")
        assert f"commit {commit}" in printed
        files = hub.store.tree("org/converted", commit)
        assert files[WEIGHTS_NAME] == (out / WEIGHTS_NAME).read_bytes()
        assert 'from_pretrained("org/converted")' in files["README.md"].decode()
        from alpharefine_sdk.weights.hub import load_from_hub

        net, _ = load_from_hub("org/converted", revision=commit, cache_dir=None, local_files_only=False, token=None)
    assert _same_as(out, net.state_dict()) and _same_as(out, read_safetensors(model_folder / WEIGHTS_NAME))
    assert not attempts


def test_convert_bad_repo_id_fails_before_writing(model_folder, tmp_path, capsys):
    assert main(["convert", str(model_folder), str(tmp_path / "o"), "--push-to-hub", "no slash"]) == 1
    assert "repo_id must look like 'org/name'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
