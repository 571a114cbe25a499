"""Precision of a refiner on sequences it never saw (the default-model issue's box and mask tests).

For every model given: template from frame 0, then every ``--step``-th frame's ground truth jittered
at each level (``exact`` = the ground truth itself; otherwise size x exp(N*level), centre +
(U-0.5)*level*sqrt(wh), the training recipe's jitter), refined once. Reports mean IoU over all
frames of the input box, the network's box (ungated), the shipped pipeline (the model's own gate,
``gate="auto"``; for models with a learned confidence this uses ``RefineResult.score``), and the
per-frame best of input and network (a perfect chooser's ceiling). Masks: Jaccard of the refined
mask (> 0.5) on DAVIS-layout sequences at jitter 0.10 against the filled input box.

    python scripts/precision_eval.py mnv2-shared-v2 runs/v3/model --step 3 --out runs/precision
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

import numpy as np

DATA = Path("../shared/data")
#: One dumped record: sequence index, level index, ground truth, input box, network box (x, y, w, h),
#: predicted IoUs of the network box and of the input box (NaN for models without a confidence).
DUMP_COLUMNS = ["seq", "level", "gx", "gy", "gw", "gh", "ix", "iy", "iw", "ih", "nx", "ny", "nw", "nh", "s_net", "s_in"]
LEVELS = {"exact": 0.0, "0.05": 0.05, "0.10": 0.10, "0.25": 0.25, "0.50": 0.50}


def _jitter(gt: np.ndarray, level: float, rng: np.random.Generator, hw) -> np.ndarray:
    from alpharefine_sdk.training.augment import Jitter

    if level == 0:
        return gt.copy()
    H, W = hw
    for _ in range(20):
        jb = Jitter(level, level).apply(gt, rng)
        x0, y0 = max(jb[0], 0.0), max(jb[1], 0.0)
        x1, y1 = min(jb[0] + jb[2], W - 1.0), min(jb[1] + jb[3], H - 1.0)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            return np.array([x0, y0, x1 - x0, y1 - y0])
    return gt.copy()


def evaluate_model(source: str, seqs, step: int, seed: int = 0, margins=(), dump=None, seeds=None) -> Dict[str, object]:
    """``seeds``: jitter draws to pool (default ``[seed]``; more draws give more boxes per frame).
    ``margins``: also score the gate ``Gate(score_margin=m)`` for each m (models with scores).
    ``dump``: a list that receives one record per refined box (sequence, level, ground truth, input
    box, network box, predicted IoUs) for offline study of gates."""
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.boxes import iou
    from alpharefine_sdk.gate import Gate

    auto = Refiner.from_pretrained(source, device="cpu", backend="torch")
    gate = auto.gate
    extra = {
        f"margin {m:+.2f}": Gate(min_iou=0.0, area_ratio=(0.0, float("inf")), max_iou=1.0, score_margin=m)
        for m in margins
    }
    cols = ["input", "network", "pipeline", "best", *extra]
    rows: Dict[str, Dict[str, List[float]]] = {k: {c: [] for c in cols} for k in LEVELS}
    per_seq: Dict[str, Dict[str, float]] = {}
    jac, jac_box = [], []
    draws = list(seeds) if seeds else [seed]
    for sd in draws:
        for k, seq in enumerate(seqs):
            r = auto.clone()
            r.gate = None  # the gates are applied below, on the same network box
            r.initialize(seq.frame(0), seq.gt[0])
            seq_rows = {lv: [] for lv in LEVELS}
            masks = getattr(seq, "mask_paths", None) is not None
            for i in range(1, len(seq), step):
                gt = seq.gt[i]
                if not np.isfinite(gt).all() or gt[2] <= 0 or gt[3] <= 0:
                    continue
                frame = seq.frame(i)
                for j, (lv, level) in enumerate(LEVELS.items()):
                    rng = np.random.default_rng([sd, k, i, j])
                    jb = _jitter(gt, level, rng, frame.shape[:2])
                    want_mask = masks and lv == "0.10"
                    res = r.refine(frame, jb, mask=want_mask)
                    net = res.box  # ungated: the network's box (the input box only when degenerate)
                    scores = None if res.score is None else (res.score, res.input_score)

                    def take(g) -> float:
                        if g is None:
                            return iou(net, gt)
                        ok = g.accept(jb, net, scores) if isinstance(g, Gate) else g.accept(jb, net)
                        return iou(net if ok else jb, gt)

                    if dump is not None:
                        sc = scores if scores is not None else (np.nan, np.nan)
                        dump.append((k, j, *gt, *jb, *net, *sc))
                    a, b, c = iou(jb, gt), iou(net, gt), take(gate)
                    rows[lv]["input"].append(a)
                    rows[lv]["network"].append(b)
                    rows[lv]["pipeline"].append(c)
                    rows[lv]["best"].append(max(a, b))
                    for name, g in extra.items():
                        rows[lv][name].append(take(g))
                    seq_rows[lv].append(c)
                    if want_mask:
                        m = np.asarray(seq.mask(i)) > 0
                        pred = res.mask > 0.5
                        jac.append((pred & m).sum() / max(1, (pred | m).sum()))
                        boxm = np.zeros_like(m)
                        x, y, w, h = (int(round(v)) for v in jb)
                        boxm[max(0, y) : y + h, max(0, x) : x + w] = True
                        jac_box.append((boxm & m).sum() / max(1, (boxm | m).sum()))
            if sd == draws[0]:
                per_seq[seq.name] = {lv: float(np.mean(v)) for lv, v in seq_rows.items() if v}
    table = {lv: {k: float(np.mean(v)) for k, v in d.items()} for lv, d in rows.items()}
    return {
        "model": source,
        "gate": repr(gate),
        "frames_per_level": len(rows["exact"]["input"]),
        "table": table,
        "mask_jaccard_0.10": float(np.mean(jac)) if jac else None,
        "box_jaccard_0.10": float(np.mean(jac_box)) if jac_box else None,
        "per_sequence_pipeline": per_seq,
    }


def markdown(results: List[Dict[str, object]]) -> str:
    lines = []
    for r in results:
        cols = list(next(iter(r["table"].values())))
        lines += [
            f"{r['model']} (gate: {r['gate']})",
            "",
            "| input box | "
            + " | ".join(
                c.replace("network", "network (ungated)").replace("pipeline", "shipped pipeline") for c in cols
            )
            + " |",
            "|---|" + "---:|" * len(cols),
        ]
        for lv, t in r["table"].items():
            lines.append(f"| {lv} | " + " | ".join(f"{t[c]:.3f}" for c in cols) + " |")
        lines.append("")
    lines += ["", "| model | mask Jaccard at jitter 0.10 (DAVIS) | filled input box |", "|---|---:|---:|"]
    for r in results:
        mj, bj = r["mask_jaccard_0.10"], r["box_jaccard_0.10"]
        lines.append(f"| {r['model']} | {mj:.3f} | {bj:.3f} |" if mj is not None else f"| {r['model']} | - | - |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="model folders or names (anything Refiner.from_pretrained takes)")
    ap.add_argument("--sequences", default=str(DATA / "sequences"), help="held-out sequences (any layout)")
    ap.add_argument("--step", type=int, default=3, help="every n-th frame")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", default=None, help="write results.json and table.md here")
    ap.add_argument("--dump", default=None, help="write each model's per-box records to DIR/<model>.npz")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="jitter draws to pool (default: 0)")
    ap.add_argument("--margins", type=float, nargs="*", default=[], help="also score Gate(score_margin=m) alone")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from alpharefine_sdk.eval.datasets import find_sequences

    seqs = find_sequences(a.sequences)
    results = []
    for m in a.models:
        records: List[tuple] = []
        results.append(
            evaluate_model(m, seqs, a.step, margins=a.margins, dump=records if a.dump else None, seeds=a.seeds)
        )
        if a.dump:
            Path(a.dump).mkdir(parents=True, exist_ok=True)
            np.savez(
                Path(a.dump) / f"{Path(m).name}.npz",
                records=np.asarray(records, dtype=np.float64),
                columns=np.array(DUMP_COLUMNS),
                sequences=np.array([s.name for s in seqs]),
                levels=np.array(list(LEVELS)),
            )
    md = f"{len(seqs)} sequences, every {a.step}th frame, {results[0]['frames_per_level']} boxes per level\n\n"
    md += markdown(results)
    print(md)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        (out / "table.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
