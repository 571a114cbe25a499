"""Held-out evaluation of a trained refiner on sequences it never saw (``../shared/data/sequences``).

Two tests, both with an identity refiner (the input box unchanged) as the floor and a paired
bootstrap confidence interval over sequences:

1. **Jitter test** (tracker-independent): every ground-truth box from frame 1 on is jittered as in
   training (size x exp(N*0.25), centre + (U-0.5)*0.25*sqrt(wh)), then refined with the template
   of frame 0; IoU with the ground truth before (= identity) and after, with and without the gate.
   A harder level (0.5 / 0.5) is reported too.
2. **Base trackers** (CSRT, MIL, NanoTrack v2) through ``alpharefine_sdk.eval.evaluate``: base,
   refined (``--write-back``: auto = RefinedTracker's default) and refined with the gate; mean IoU and AUC. MIL is
   seeded (``cv2.setRNGSeed`` through the harness) and run with several seeds.

Usage (from the repository root)::

    python scripts/heldout_eval.py --model models/mnv2-shared-v1 \
        --out ../runs/heldout --mil-seeds 0 1 2

Writes ``results.json`` and ``table.md`` under ``--out`` and prints the table and the verdict
for the default-model criterion.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

DATA = Path("../shared/data")


def jitter_test(refiner, seqs, gate, *, scale: float, center: float, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Per-sequence mean IoU of jittered GT before / after refinement / after gated refinement."""
    from alpharefine_sdk.boxes import iou
    from alpharefine_sdk.training.augment import Jitter

    jit = Jitter(scale, center)
    out = {}
    for k, seq in enumerate(seqs):
        rng = np.random.default_rng([seed, k])
        r = refiner.clone()
        r.gate = None
        r.initialize(seq.frame(0), seq.gt[0])
        before, after, gated, n_gated = [], [], [], 0
        for i in range(1, len(seq)):
            gt = seq.gt[i]
            if not np.isfinite(gt).all() or gt[2] <= 0 or gt[3] <= 0:
                continue
            frame = seq.frame(i)
            H, W = frame.shape[:2]
            for _ in range(20):
                jb = jit.apply(gt, rng)
                x0, y0 = max(jb[0], 0.0), max(jb[1], 0.0)
                x1, y1 = min(jb[0] + jb[2], W - 1.0), min(jb[1] + jb[3], H - 1.0)
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    jb = np.array([x0, y0, x1 - x0, y1 - y0])
                    break
            else:
                continue
            rr = r.refine(frame, jb)
            res = rr.box
            before.append(iou(jb, gt))
            after.append(iou(res, gt))
            scores = None if rr.score is None else (rr.score, rr.input_score)
            ok = gate is None or gate.accept(jb, res, scores)
            n_gated += not ok
            gated.append(iou(res if ok else jb, gt))
        out[seq.name] = {
            "frames": len(before),
            "before": float(np.mean(before)),
            "after": float(np.mean(after)),
            "gated": float(np.mean(gated)),
            "gated_share": n_gated / max(1, len(before)),
            "improved_share": float(np.mean(np.array(after) > np.array(before))),
        }
    return out


def _ci(a, b) -> Dict[str, float]:
    from alpharefine_sdk.eval.metrics import paired_bootstrap_ci

    return paired_bootstrap_ci(a, b, n=10000, seed=0)


def summarize_jitter(per_seq: Dict[str, Dict[str, float]]) -> Dict[str, object]:
    names = sorted(per_seq)
    b = [per_seq[n]["before"] for n in names]
    a = [per_seq[n]["after"] for n in names]
    g = [per_seq[n]["gated"] for n in names]
    return {
        "before": float(np.mean(b)),
        "after": float(np.mean(a)),
        "gated": float(np.mean(g)),
        "ci_after": _ci(b, a),
        "ci_gated": _ci(b, g),
        "per_sequence": per_seq,
    }


def tracker_eval(
    refiner,
    gate,
    trackers: List[str],
    seeds: Dict[str, List[int]],
    out: Path,
    max_frames: Optional[int] = None,
    write_back: str = "auto",
) -> Dict[str, object]:
    """Base / +AR / +AR+gate per tracker through the evaluation harness; MIL averaged over seeds."""
    from alpharefine_sdk.eval import evaluate

    nano = DATA / "nanotrack_onnx" / "v2"
    opts = {"nano": {"backbone": str(nano / "backbone.onnx"), "neckhead": str(nano / "neckhead.onnx")}}
    results: Dict[str, object] = {}
    for t in trackers:
        per_seed = []
        for s in seeds.get(t, [0]):
            res = evaluate(
                DATA / "sequences",
                [t],
                refiner=refiner,
                gate=gate,
                compare=True,
                seed=s,
                tracker_options={t: opts[t]} if t in opts else None,
                masks=False,
                plots=False,
                output=out / f"{t}_seed{s}",
                max_frames=max_frames,
                write_back={"auto": "auto", "on": True, "off": False}[write_back],
            )
            per_seed.append(res)
        results[t] = _merge_seeds(t, per_seed)
    return results


def posthoc_eval(refiner, gate, seqs, trackers: List[str], seeds: Dict[str, List[int]], out: Path) -> Dict[str, object]:
    """Refine the base tracker's saved boxes frame by frame, without writing them back into the tracker
    (the tracker runs exactly as its base run). Per-sequence mean IoU, averaged over seeds."""
    from alpharefine_sdk.boxes import clip_box, iou

    res: Dict[str, object] = {}
    for t in trackers:
        per = {"base": {}, "refined": {}, "gated": {}}
        gated_frames = total = 0
        for s in seeds.get(t, [0]):
            folder = out / f"{t}_seed{s}" / "boxes" / t
            for seq in seqs:
                boxes = np.loadtxt(folder / f"{seq.name}.txt", delimiter=",", ndmin=2)
                r = refiner.clone()
                r.gate = None
                r.initialize(seq.frame(0), seq.gt[0])
                b_i, r_i, g_i = [], [], []
                for i in range(1, len(boxes)):
                    gt = seq.gt[i]
                    if not np.isfinite(gt).all():
                        continue
                    frame = seq.frame(i)
                    base = boxes[i]
                    try:
                        ref = clip_box(r.refine(frame, base).box, frame.shape[:2], 10)
                    except ValueError:
                        ref = base
                    ok = gate.accept(base, ref)
                    gated_frames += not ok
                    total += 1
                    b_i.append(iou(base, gt))
                    r_i.append(iou(ref, gt))
                    g_i.append(iou(ref if ok else base, gt))
                for k, v in (("base", b_i), ("refined", r_i), ("gated", g_i)):
                    per[k].setdefault(seq.name, []).append(float(np.mean(v)))
        names = [q.name for q in seqs]
        m = {k: {n: float(np.mean(per[k][n])) for n in names} for k in per}
        res[t] = {
            "seeds": len(seeds.get(t, [0])),
            "summary": {k: float(np.mean(list(m[k].values()))) for k in m},
            "ci_refined": _ci([m["base"][n] for n in names], [m["refined"][n] for n in names]),
            "ci_gated": _ci([m["base"][n] for n in names], [m["gated"][n] for n in names]),
            "gated_share": gated_frames / max(1, total),
            "per_sequence": m,
        }
    return res


def posthoc_markdown(ph: Dict[str, dict]) -> str:
    lines = [
        "",
        "## Base trackers, refined without write-back (the tracker's own boxes refined frame by frame)",
        "",
        "| tracker | seeds | base mIoU | refined | refined + gate | refined - base (95% CI) | gated - base (95% CI) | gated frames |",
        "|---|---:|---:|---:|---:|---|---|---:|",
    ]
    for t, r in ph.items():
        s, a, g = r["summary"], r["ci_refined"], r["ci_gated"]
        lines.append(
            f"| {t} | {r['seeds']} | {s['base']:.3f} | {s['refined']:.3f} | {s['gated']:.3f} | "
            f"{a['mean']:+.3f} ({a['low']:+.3f} .. {a['high']:+.3f}) | {g['mean']:+.3f} ({g['low']:+.3f} .. {g['high']:+.3f}) "
            f"| {100 * r['gated_share']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


def _merge_seeds(t: str, runs) -> Dict[str, object]:
    """Per-sequence metrics averaged over seeds, then means and paired CIs over sequences."""
    variants = [t, f"{t}+AR", f"{t}+AR+gate"]
    names = sorted(runs[0].per_sequence)
    table: Dict[str, Dict[str, float]] = {}
    per_seq: Dict[str, Dict[str, Dict[str, float]]] = {}
    for v in variants:
        for k in ("miou", "auc"):
            vals = {n: float(np.mean([r.per_sequence[n][v][k] for r in runs])) for n in names}
            per_seq.setdefault(v, {})[k] = vals
            table.setdefault(v, {})[k] = float(np.mean(list(vals.values())))
    cis = {}
    for v in variants[1:]:
        for k in ("miou", "auc"):
            a = [per_seq[t][k][n] for n in names]
            b = [per_seq[v][k][n] for n in names]
            cis[f"{v} {k}"] = _ci(a, b)
    return {"seeds": len(runs), "summary": table, "ci": cis, "per_sequence": per_seq}


WRITE_BACK_TEXT = {
    "auto": "RefinedTracker's default write-back: OpenCV trackers are not re-initialised",
    "on": "write-back into the tracker: re-initialised on the refined box every frame",
    "off": "no write-back",
}


def markdown(jit: Dict[str, dict], trk: Dict[str, dict], write_back: str = "auto") -> str:
    lines = [
        "## Jitter test (held-out GT jittered, template from frame 0; mean IoU over 7 sequences)",
        "",
        "| jitter | identity (before) | refined | refined + gate | refined - before (95% CI) | gated - before (95% CI) |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, s in jit.items():
        ca, cg = s["ci_after"], s["ci_gated"]
        lines.append(
            f"| {name} | {s['before']:.3f} | {s['after']:.3f} | {s['gated']:.3f} | "
            f"{ca['mean']:+.3f} ({ca['low']:+.3f} .. {ca['high']:+.3f}) | {cg['mean']:+.3f} ({cg['low']:+.3f} .. {cg['high']:+.3f}) |"
        )
    lines += [
        "",
        f"## Base trackers ({WRITE_BACK_TEXT[write_back]}; mean over 7 sequences)",
        "",
        "| tracker | seeds | variant | mean IoU | AUC | mIoU diff vs base (95% CI) | AUC diff vs base (95% CI) |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for t, r in trk.items():
        for v, m in r["summary"].items():
            if v == t:
                lines.append(f"| {t} | {r['seeds']} | base | {m['miou']:.3f} | {m['auc']:.3f} | | |")
                continue
            ci_m, ci_a = r["ci"][f"{v} miou"], r["ci"][f"{v} auc"]
            lines.append(
                f"| {t} | {r['seeds']} | {v[len(t) :]} | {m['miou']:.3f} | {m['auc']:.3f} | "
                f"{ci_m['mean']:+.3f} ({ci_m['low']:+.3f} .. {ci_m['high']:+.3f}) | "
                f"{ci_a['mean']:+.3f} ({ci_a['low']:+.3f} .. {ci_a['high']:+.3f}) |"
            )
    return "\n".join(lines) + "\n"


def verdict(trk: Dict[str, dict]) -> Dict[str, object]:
    """The default-model criterion: refined CSRT and MIL beat base mean IoU with the CI above zero,
    refined NanoTrack not worse (all with the gate on)."""

    def ci(t):
        return trk[t]["ci"][f"{t}+AR+gate miou"] if t in trk else None

    csrt, mil, nano = ci("csrt"), ci("mil"), ci("nano")
    ok = bool(csrt and mil and nano and csrt["low"] > 0 and mil["low"] > 0 and nano["mean"] >= 0)
    return {"default_criterion_met": ok, "csrt": csrt, "mil": mil, "nano": nano}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder (or anything Refiner.from_pretrained takes)")
    p.add_argument("--out", default="../runs/heldout", help="output folder")
    p.add_argument("--trackers", nargs="+", default=["csrt", "mil", "nano"])
    p.add_argument("--mil-seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--gate-min-iou", type=float, default=None, help="gate min_iou (default: Gate's default)")
    p.add_argument("--gate-area", type=float, nargs=2, default=None, help="gate area_ratio low high")
    p.add_argument("--gate-max-iou", type=float, default=None, help="gate max_iou")
    p.add_argument("--gate-score-margin", type=float, default=None, help="gate score_margin (learned confidence)")
    p.add_argument("--skip-trackers", action="store_true", help="only the jitter test")
    p.add_argument(
        "--posthoc-only",
        action="store_true",
        help="only the no-write-back refinement of base boxes saved by an earlier run in --out",
    )
    p.add_argument("--threads", type=int, default=1, help="threads of the engine (torch or ONNX Runtime / OpenVINO)")
    p.add_argument(
        "--backend",
        default="auto",
        help="engine (default auto, the library's default path; every engine carries the learned confidence)",
    )
    p.add_argument(
        "--write-back",
        choices=("auto", "on", "off"),
        default="auto",
        help="write-back policy of RefinedTracker (auto = the adapters' default)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="smoke test: only the first N frames per sequence")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from alpharefine_sdk import Refiner
    from alpharefine_sdk.eval.datasets import find_sequences
    from alpharefine_sdk.gate import Gate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from alpharefine_sdk.backends import OPTIONS, auto_backend

    engine = auto_backend("fp32", "cpu") if args.backend == "auto" else args.backend
    opts = {"threads": args.threads} if "threads" in OPTIONS.get(engine, ()) else {}
    refiner = Refiner.from_pretrained(args.model, device="cpu", backend=args.backend, **opts)
    kw = {}
    if args.gate_min_iou is not None:
        kw["min_iou"] = args.gate_min_iou
    if args.gate_area is not None:
        kw["area_ratio"] = tuple(args.gate_area)
    if args.gate_max_iou is not None:
        kw["max_iou"] = args.gate_max_iou
    if args.gate_score_margin is not None:
        kw["score_margin"] = args.gate_score_margin
    # the model's own gate (config.json extra.gate) unless gate options are given
    gate = Gate(**kw) if kw or refiner.gate is None else refiner.gate
    seqs = find_sequences(DATA / "sequences")
    seeds = {"mil": args.mil_seeds}
    if args.posthoc_only:
        ph = posthoc_eval(refiner, gate, seqs, args.trackers, seeds, out)
        md = posthoc_markdown(ph)
        (out / "posthoc.md").write_text(md)
        (out / "posthoc.json").write_text(json.dumps(ph, indent=1))
        print(md)
        return 0
    t0 = time.time()
    jit = (
        {}
        if args.max_frames
        else {
            "paper (0.25 / 0.25)": summarize_jitter(jitter_test(refiner, seqs, gate, scale=0.25, center=0.25)),
            "hard (0.5 / 0.5)": summarize_jitter(jitter_test(refiner, seqs, gate, scale=0.5, center=0.5, seed=1)),
        }
    )
    print(f"jitter test done in {time.time() - t0:.0f} s", file=sys.stderr)
    trk: Dict[str, dict] = {}
    if not args.skip_trackers:
        trk = tracker_eval(refiner, gate, args.trackers, {"mil": args.mil_seeds}, out, args.max_frames, args.write_back)
    md = markdown(jit, trk, args.write_back)
    v = verdict(trk) if trk else {}
    if v:
        md += f"\nDefault-model criterion met: **{v['default_criterion_met']}**\n"
    (out / "table.md").write_text(md)
    gate_info = {
        "min_iou": gate.min_iou,
        "area_ratio": list(gate.area_ratio),
        "max_iou": gate.max_iou,
        "score_margin": gate.score_margin,
    }
    (out / "results.json").write_text(
        json.dumps(
            {
                "model": args.model,
                "gate": gate_info,
                "write_back": args.write_back,
                "sequences": [s.name for s in seqs],
                "jitter": jit,
                "trackers": trk,
                "verdict": v,
            },
            indent=1,
        )
    )
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
