"""The CLI on a fresh clone: ``eval`` and ``track`` default to the sample sequence in the repository,
and every command that runs a base tracker spells write-back the same way with the same default."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny import ROOT_DATA, tiny_refiner

from alpharefine_sdk.cli import build_parser, main

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "model"
    tiny_refiner(seed=1).save_pretrained(d)
    return str(d)


def _subparsers():
    parser = build_parser()
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_write_back_is_one_option_with_one_default_everywhere():
    seen = {}
    for name, p in _subparsers().items():
        opts = {o: a for a in p._actions for o in a.option_strings}
        assert "--no-write-back" not in opts, name
        if "--write-back" in opts:
            a = opts["--write-back"]
            seen[name] = (tuple(a.choices), a.default)
    assert {"eval", "track"} <= set(seen)
    assert set(seen.values()) == {(("auto", "on", "off"), "auto")}, seen


def test_every_option_has_help():
    for name, p in _subparsers().items():
        for a in p._actions:
            if a.option_strings and a.dest != "help":
                assert a.help, f"{name} {a.option_strings[0]}"


def test_eval_defaults_to_the_sample_sequence(tmp_path, tiny_weights, capsys):
    out = tmp_path / "ev"
    argv = ["eval", "--weights", tiny_weights, "--max-frames", "6", "--compare", "--no-plots", "-q", "-o", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "1 sequences, 6 frames" in text and "csrt+AR" in text
    assert "warning: 1 sequence(s): too few for a confidence interval" in text and "95% CI" not in text
    res = json.loads((out / "results.json").read_text())
    assert list(res["sequences"]) == ["Crossing"] and res["config"]["write_back"] == "auto"


def test_track_defaults_to_the_sample_sequence(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["track", "--weights", tiny_weights, "--max-frames", "4", "-q", "--write-back", "off"]) == 0
    assert (tmp_path / "alpharefine-track.mp4").stat().st_size > 0
    base = np.loadtxt(tmp_path / "alpharefine-track_base.txt", delimiter=",")
    refined = np.loadtxt(tmp_path / "alpharefine-track_refined.txt", delimiter=",")
    assert base.shape == refined.shape == (4, 4)
    gt0 = np.loadtxt(ROOT_DATA / "groundtruth_rect.txt", delimiter=",")[0]
    np.testing.assert_allclose(base[0], gt0)  # frame 0 starts from the sample's ground truth


def test_progress_bars_only_on_a_terminal(tmp_path, tiny_weights, capsys, monkeypatch):
    """Without -q, a progress bar is drawn only when stderr is a terminal (logs and CI stay clean)."""
    import sys

    argv = ["eval", "--weights", tiny_weights, "--max-frames", "3", "--no-plots"]
    assert main([*argv, "-o", str(tmp_path / "a")]) == 0
    assert "run/s" not in capsys.readouterr().err  # pytest's stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main([*argv, "-o", str(tmp_path / "b")]) == 0
    assert "eval: 100%" in capsys.readouterr().err  # the bar, on a "terminal"
