"""Print the largest parity errors against the original on the shared golden cases.

Usage: python scripts/parity_report.py [--backend torch] [--precision fp32]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import cv2
import numpy as np

from alpharefine_sdk import Refiner
from alpharefine_sdk.geometry.crop import crop_patch, crop_window

PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "parity"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    g = np.load(PARITY / "golden.npz")
    frames = [cv2.cvtColor(cv2.imread(str(PARITY / f)), cv2.COLOR_BGR2RGB) for f in g["frame_file"]]
    r = Refiner.from_pretrained(
        PARITY / "ar34_random.pth.tar", device=args.device, backend=args.backend, precision=args.precision
    )
    crops_ok = box_err = box_rel = mask_err = 0.0
    n = refused = 0
    for i, tags in enumerate(g["case_tags"]):
        if "outside" in tags:
            r.initialize(frames[g["ref_frame"][i]], g["init_box"][i])
            try:
                r.refine(frames[g["test_frame"][i]], g["input_box"][i])
            except ValueError:
                refused += 1
            continue
        n += 1
        win = crop_window(g["input_box"][i])
        crop = crop_patch(frames[g["test_frame"][i]], win)
        crops_ok += hashlib.sha256(crop.tobytes()).hexdigest() == g["search_crop_sha256"][i]
        r.initialize(frames[g["ref_frame"][i]], g["init_box"][i])
        box, mask = r.refine(frames[g["test_frame"][i]], g["input_box"][i], mask=bool(g["has_mask"][i]))
        e = np.abs(box - g["box"][i]).max()
        box_err = max(box_err, e)
        box_rel = max(box_rel, e / max(1, win.ws / 256, win.hs / 256))
        if mask is not None:
            mask_err = max(mask_err, np.abs(mask - g["mask_frame_u16_%02d" % i] / 65535).max())
    print(f"backend {args.backend}, precision {args.precision}, device {args.device}")
    print(f"in-frame cases: {n}; search crops bit-exact: {int(crops_ok)}/{n}; outside cases refused: {refused}/4")
    print(f"max |box - golden|: {box_err:.2e} px (crop-space equivalent {box_rel:.2e} px; tolerance 2e-3)")
    print(f"max |mask - golden|: {mask_err:.2e} (tolerance 1e-4)")


if __name__ == "__main__":
    main()
