"""The wheel and the sdist as built from this checkout, and the README as the package index shows
it. Builds with ``python -m build`` (the ``dev`` extra); about 20 s."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("build")


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_wheel_holds_the_package_licence_and_only_the_current_model(dist):
    wheel, _ = dist
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    models = sorted({n.split("/")[2] for n in names if n.startswith("alpharefine_sdk/models/")})
    assert models == ["mnv2-shared-v2"]  # the superseded mnv2-shared-v1 stays out
    assert "alpharefine_sdk/py.typed" in names
    assert not any(n.startswith(("data/", "tests/", "models/")) or "/data/Crossing/" in n for n in names)
    assert wheel.stat().st_size < 6 * 2**20


def test_wheel_metadata(dist):
    wheel, _ = dist
    z = zipfile.ZipFile(wheel)
    meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta
    assert "Project-URL: " in meta
    torch_floor = re.search(r"Requires-Dist: torch>=([0-9.]+)", meta).group(1)
    assert tuple(int(v) for v in torch_floor.split(".")) >= (2, 3)  # 2.1/2.2 fail with numpy 2
    assert re.search(r'Requires-Dist: six>=[0-9.]+; extra == "eval"', meta)  # got10k needs it, undeclared
    assert "Apache License" in z.read(next(n for n in z.namelist() if n.endswith("licenses/LICENSE"))).decode()


def test_sdist_holds_docs_configs_and_licence_not_the_sample(dist):
    _, sdist = dist
    names = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
    for must in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "docs/evaluation.md", "docs/weights.md"):
        assert must in names, must
    assert any(n.startswith("configs/") and n.endswith(".json") for n in names)
    assert "src/alpharefine_sdk/models/mnv2-shared-v2/model.safetensors" in names
    assert not any(n.startswith(("data/", "models/")) for n in names)


def test_readme_reads_right_on_the_package_index():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", text) + re.findall(r'(?:src|href)="([^"]+)"', text)
    relative = [u for u in links if not re.match(r"https?://", u)]
    assert relative == []  # relative links break on the package index
    first = text[: text.index("## Use in code")]
    assert "../shared" not in first  # the first commands work from a fresh clone with nothing beside it
    assert "alpharefine-sdk eval --tracker csrt" in first and "bash .ci/run" in first


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv" in ci and '"torch==2.13.0"' in ci
    assert ci.index('"torch==2.13.0"') < ci.index('-e ".[')  # torch first, then the project
    assert "ruff check" in ci and "ruff format --check" in ci
    assert "python -m pytest -q" in ci and "`python -m pytest -q`" in (ROOT / "README.md").read_text()


def test_cli_help_names_no_unshipped_docs():
    from alpharefine_sdk.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert "docs/" not in p.format_help(), name
