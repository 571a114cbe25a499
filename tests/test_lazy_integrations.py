"""The VOT, Ray and demo integrations load their host libraries only when used: importing the
package, its CLI (every sub-command's parser) and the integration modules imports none of them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("ray", "gradio", "vot", "trax", "playwright", "pandas", "torch", "cv2")


def test_integrations_import_nothing_heavy():
    code = (
        "import sys, alpharefine_sdk, alpharefine_sdk.demo, alpharefine_sdk.integrations.vot, "
        "alpharefine_sdk.eval.distributed, alpharefine_sdk.demo.core; from alpharefine_sdk.cli import build_parser; "
        "p = build_parser(); p.parse_args(['vot', 'trax']); p.parse_args(['demo']); p.parse_args(['eval', 'x', '--ray']); "
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_cli_lists_the_new_commands(capsys):
    import pytest

    from alpharefine_sdk.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "vot" in text and "demo" in text
