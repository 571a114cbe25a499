"""Choose the do-no-harm gate's defaults on validation sequences (never on the test sequences).

Inputs to refine, per validation sequence (template from frame 0):
* ground truth jittered at three levels: near-perfect (0.05 / 0.05), the paper's (0.25 / 0.25) and
  a weak tracker's (0.5 / 0.75);
* CSRT's own boxes (no write-back).
Each input is refined once; then every gate on a grid is scored by the mean IoU of its output
(refined box where accepted, input box where not) with the ground truth, averaged over the four
input kinds with equal weight. For models with a learned confidence the score margin joins the grid.
Prints the best gates and writes ``gate_grid.json``.

Usage (repository root)::

    python scripts/choose_gate.py --model ../runs/mnv2-shared-v1/model \
        --sequences camel drift-straight hike boat1 person12_1 --out ../runs/gate
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np


def collect(refiner, seqs, seed: int = 0) -> Dict[str, list]:
    """``{kind: [(input, refined, gt, sequence, scores), ...]}``; ``scores`` is ``(refined, input)``
    predicted IoU for models with a learned confidence, else ``None``."""
    import cv2

    from alpharefine_sdk.training.augment import Jitter

    levels = {
        "jitter 0.05": Jitter(0.05, 0.05),
        "jitter 0.25": Jitter(0.25, 0.25),
        "jitter 0.5": Jitter(0.5, 0.75, 0.3),
    }
    out: Dict[str, list] = {k: [] for k in [*levels, "csrt"]}
    for k, seq in enumerate(seqs):
        rng = np.random.default_rng([seed, k])
        r = refiner.clone()
        r.gate = None
        f0 = seq.frame(0)
        r.initialize(f0, seq.gt[0])
        csrt = cv2.TrackerCSRT.create()
        cv2.setRNGSeed(seed)
        x, y, w, h = seq.gt[0]
        csrt.init(cv2.cvtColor(f0, cv2.COLOR_RGB2BGR), (int(round(x)), int(round(y)), int(round(w)), int(round(h))))
        for i in range(1, len(seq)):
            frame = seq.frame(i)
            gt = seq.gt[i]
            ok, cb = csrt.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            if not np.isfinite(gt).all() or gt[2] <= 0 or gt[3] <= 0:
                continue
            H, W = frame.shape[:2]
            inputs = {name: jit.apply(gt, rng) for name, jit in levels.items()}
            if ok and cb[2] > 1 and cb[3] > 1:
                inputs["csrt"] = np.asarray(cb, dtype=np.float64)
            for name, b in inputs.items():
                x0, y0 = max(b[0], 0.0), max(b[1], 0.0)
                x1, y1 = min(b[0] + b[2], W - 1.0), min(b[1] + b[3], H - 1.0)
                if x1 - x0 < 2 or y1 - y0 < 2:
                    continue
                b = np.array([x0, y0, x1 - x0, y1 - y0])
                res = r.refine(frame, b)
                scores = None if res.score is None else (res.score, res.input_score)
                out[name].append((b, res.box, gt, seq.name, scores))
    return out


def score(data: Dict[str, list], gate) -> Dict[str, float]:
    from alpharefine_sdk.boxes import iou

    res = {}
    for kind, rows in data.items():
        res[kind] = float(
            np.mean(
                [iou(ref if (gate is None or gate.accept(inp, ref, sc)) else inp, gt) for inp, ref, gt, _, sc in rows]
            )
        )
    res["mean"] = float(np.mean([res[k] for k in data]))
    return res


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--root", default="../shared/train")
    p.add_argument("--sequences", nargs="+", required=True, help="validation sequences (held out of training)")
    p.add_argument("--out", default="../runs/gate")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.boxes import iou
    from alpharefine_sdk.eval.datasets import find_sequences, subset
    from alpharefine_sdk.gate import Gate

    refiner = Refiner.from_pretrained(args.model, device="cpu")
    seqs = subset(find_sequences(args.root), args.sequences)
    data = collect(refiner, seqs)
    identity = {k: float(np.mean([iou(i, g) for i, _, g, *_ in rows])) for k, rows in data.items()}
    # models with a learned confidence: the score margin joins the grid (None = scores ignored)
    margins = (
        [None, -0.15, -0.1, -0.07, -0.05, -0.04, -0.03, -0.02, -0.01, 0.0, 0.05, 0.1]
        if any(r[4] is not None for rs in data.values() for r in rs)
        else [None]
    )
    identity["mean"] = float(np.mean(list(identity.values())))
    rows = [{"gate": "identity (never refine)", **identity}, {"gate": "none (always refine)", **score(data, None)}]
    for mi, (lo, hi), mx, sm in itertools.product(
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],
        [(0.0, float("inf")), (0.25, 4.0), (0.33, 3.0), (0.4, 2.5), (0.5, 2.0), (0.6, 1.6), (0.7, 1.4)],
        [1.0, 0.95, 0.9, 0.85, 0.8],
        margins,
    ):
        rows.append(
            {
                "gate": f"min_iou {mi}, area {lo}..{hi}, max_iou {mx}" + ("" if sm is None else f", score_margin {sm}"),
                "min_iou": mi,
                "area_ratio": [lo, hi],
                "max_iou": mx,
                "score_margin": sm,
                **score(data, Gate(min_iou=mi, area_ratio=(lo, hi), max_iou=mx, score_margin=sm)),
            }
        )
    rows.sort(key=lambda r: -r["mean"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate_grid.json").write_text(
        json.dumps(
            {"sequences": args.sequences, "counts": {k: len(v) for k, v in data.items()}, "rows": rows}, indent=1
        )
    )
    kinds = list(data)
    print("| gate | " + " | ".join(kinds) + " | mean |")
    print("|---|" + "---:|" * (len(kinds) + 1))
    for r in rows[:12] + [r for r in rows if r["gate"].startswith(("identity", "none"))]:
        print(f"| {r['gate']} | " + " | ".join(f"{r[k]:.3f}" for k in kinds) + f" | {r['mean']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
