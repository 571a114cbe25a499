"""Memory and time of a whole-frame box on a huge frame, against a normal refine, in one process.

    python benchmarks/crop_memory.py                 # 12000 x 12000 frame, packaged default model
    python benchmarks/crop_memory.py --side 20000 --mask
    python benchmarks/crop_memory.py --json out.json

The frame is allocated and a normal refine (a 100 x 100 box) runs first; then the peak resident
memory (``ru_maxrss``) is read, the whole-frame box is refined, and the peak is read again: the
difference is what the whole-frame crop added. Times are CPU seconds of the process
(``time.process_time``, torch on one thread) so other load on the machine does not skew the
ratio; each is the median of interleaved rounds. Goal (issue 14): growth <= 300 MB and
whole-frame / normal <= 3 (with ``--mask`` the frame-sized result is written, so only the
memory beyond it has a goal). Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

GROWTH_LIMIT_MB = 300.0
RATIO_LIMIT = 3.0


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB (bytes on macOS)
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e6


def measure(side: int = 12000, rounds: int = 5, mask: bool = False, weights: str = None) -> dict:
    import torch

    from alpharefine_sdk import Refiner

    torch.set_num_threads(1)
    refiner = Refiner.from_pretrained(weights, device="cpu", gate=None)
    frame = np.zeros((side, side, 3), np.uint8)
    frame[::7] = 200  # some texture, written so the pages are resident before the baseline
    frame[:, ::5] = 90
    normal = (side / 2 - 50, side / 2 - 50, 100.0, 100.0)
    whole = (0.0, 0.0, float(side), float(side))
    refiner.initialize(frame, normal)
    refiner.refine(frame, normal, mask=mask)
    peak0 = _peak_mb()
    t_normal, t_whole = [], []
    for _ in range(rounds):
        for box, out in ((normal, t_normal), (whole, t_whole)):
            t = time.process_time()
            res = refiner.refine(frame, box, mask=mask)
            out.append(time.process_time() - t)
            assert np.isfinite(res.box).all() and res.box[2] > 0 and res.box[3] > 0
    growth = _peak_mb() - peak0
    mask_mb = side * side * 4 / 1e6 if mask else 0.0
    ratio = float(np.median(t_whole) / np.median(t_normal))
    return {
        "side": side,
        "mask": mask,
        "normal_cpu_ms": 1000 * float(np.median(t_normal)),
        "whole_frame_cpu_ms": 1000 * float(np.median(t_whole)),
        "ratio": ratio,
        "peak_growth_mb": growth,
        "mask_output_mb": mask_mb,
        # With a mask the H x W float32 result itself is returned (and written: O(H x W) time), so
        # only the memory beyond it has a goal.
        "ok": growth - mask_mb <= GROWTH_LIMIT_MB and (mask or ratio <= RATIO_LIMIT),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=12000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--mask", action="store_true")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    r = measure(args.side, args.rounds, args.mask, args.weights)
    print(
        f"{r['side']}x{r['side']} frame{' with mask' if r['mask'] else ''}: whole-frame box "
        f"{r['whole_frame_cpu_ms']:.0f} ms CPU vs normal {r['normal_cpu_ms']:.0f} ms (ratio {r['ratio']:.2f}"
        + ("" if r["mask"] else f", goal <= {RATIO_LIMIT:g}")
        + f"); peak memory +{r['peak_growth_mb']:.0f} MB (goal <= {GROWTH_LIMIT_MB:g} MB"
        + (f" beyond the {r['mask_output_mb']:.0f} MB mask" if r["mask"] else "")
        + f"): {'met' if r['ok'] else 'NOT met'}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
