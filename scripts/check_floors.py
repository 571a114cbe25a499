"""Check the dependency floors of pyproject.toml in a fresh virtual environment: install the lowest
torch we claim (with today's NumPy 2), the project and OpenCV, then refine the sample sequence's
second frame with the packaged model and compare with this environment's result.

    python scripts/check_floors.py [--torch 2.3.1] [--keep VENV_DIR]

Takes a few minutes (the torch wheel and its CUDA libraries are large). Last run: torch 2.3.1 with
NumPy 2.4.6 gives the same box as torch 2.13.0 (torch 2.1 and 2.2 were built against NumPy 1 and
fail at the first refine with "Numpy is not available").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys
import numpy as np, torch
from PIL import Image
from alpharefine_sdk import Refiner
root = sys.argv[1]
frames = [np.asarray(Image.open(f"{root}/data/Crossing/img/{i:04d}.jpg").convert("RGB")) for i in (1, 2)]
r = Refiner.from_pretrained(device="cpu", gate=None)
r.initialize(frames[0], (205, 151, 17, 50))
res = r.refine(frames[1], (200, 148, 22, 54), mask=True)
print(json.dumps({"torch": torch.__version__, "numpy": np.__version__, "box": res.box.tolist(),
                  "mask_mean": float(res.mask.mean())}))
"""


def probe(python: str) -> dict:
    out = subprocess.run([python, "-c", PROBE, str(ROOT)], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torch", default="2.3.1", help="the torch version to check (default: the floor, 2.3.1)")
    ap.add_argument("--keep", default=None, help="build the venv here and keep it")
    args = ap.parse_args()
    venv = Path(args.keep or tempfile.mkdtemp()) / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={args.torch}", "numpy>=2"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[opencv]", "pillow"], check=True)
    floor, here = probe(py), probe(sys.executable)
    print("floor:", floor)
    print("here: ", here)
    diff = max(abs(a - b) for a, b in zip(floor["box"], here["box"]))
    ok = diff < 1e-2 and abs(floor["mask_mean"] - here["mask_mean"]) < 1e-3
    print(f"max box difference {diff:.2e} px: {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
