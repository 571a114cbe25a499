"""``alpharefine-sdk refine SEQUENCE``: refine the boxes of one sequence and print them with timings.

Input boxes are ``--boxes FILE`` (one ``x,y,w,h`` per frame, e.g. a base tracker's output) or, by
default, the sequence's ground truth jittered with a fixed seed as a stand-in for an imperfect tracker.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refine", help="refine the boxes of one sequence, print boxes and time per frame")
    p.add_argument("sequence", help="sequence folder (OTB, LaSOT, GOT-10k, VOT or DAVIS layout)")
    p.add_argument(
        "--weights", default=None, help="model folder, original *.pth.tar, or Hub repo id (default: packaged model)"
    )
    p.add_argument(
        "--boxes", default=None, help="text file of input boxes x,y,w,h per frame (default: jittered ground truth)"
    )
    p.add_argument(
        "--jitter",
        type=float,
        default=0.25,
        help="scale/offset jitter of the ground truth (default 0.25, the training recipe)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the ground-truth jitter (default 0)")
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames")
    p.add_argument("--mask", action="store_true", help="also compute the mask (same backbone pass)")
    p.add_argument("--device", default=None, help="refiner device (default: cuda if available, else cpu)")
    p.add_argument("--output", "-o", default=None, help="write refined boxes here (x,y,w,h per line)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from ..boxes import iou
    from ..eval.datasets import load_sequence, read_boxes
    from ..refiner import Refiner
    from ..training.augment import Jitter

    seq = load_sequence(args.sequence)
    refiner = Refiner.from_pretrained(args.weights, device=args.device)
    cfg = refiner.config
    print(
        f"weights: {args.weights or 'packaged default (' + (cfg.extra.get('name') or '?') + ')'} (architecture {cfg.architecture}; {cfg.source or 'no provenance recorded'})"
    )
    print(f"sequence: {seq.name} ({seq.kind}, {len(seq)} frames)")
    n = len(seq) if args.max_frames is None else min(len(seq), args.max_frames)
    rng = np.random.default_rng(args.seed)
    jitter = Jitter(scale=args.jitter, center=args.jitter)  # the training recipe's jitter
    given = read_boxes(args.boxes, allow_polygons=False) if args.boxes else None
    if given is not None and len(given) < n:
        raise ValueError(
            f"--boxes {args.boxes} has {len(given)} rows but {n} frames are refined: give one x,y,w,h row per "
            f"frame (or pass --max-frames {len(given)})"
        )
    refiner.initialize(seq.frame(0), seq.gt[0])
    out, ious_in, ious_out, times = [np.asarray(seq.gt[0], float)], [], [], []
    print(f"{'frame':>5}  {'input x,y,w,h':>30}  {'refined x,y,w,h':>30}  {'IoU in':>6} {'IoU out':>7} {'ms':>6}")
    for i in range(1, n):
        frame, gt = seq.frame(i), seq.gt[i]
        if given is not None:
            box_in = given[i]
        elif np.isfinite(gt).all():
            box_in = jitter.apply(np.asarray(gt, np.float64), rng)
        else:
            box_in = out[-1]
        t = time.perf_counter()
        res = refiner.refine(frame, box_in, mask=args.mask)
        times.append((time.perf_counter() - t) * 1000)
        out.append(res.box)
        a = b = float("nan")
        if np.isfinite(gt).all():
            a, b = iou(box_in, gt), iou(res.box, gt)
            ious_in.append(a)
            ious_out.append(b)
        fmt = lambda v: ",".join(f"{x:.1f}" for x in v)  # noqa: E731
        print(f"{i:5d}  {fmt(box_in):>30}  {fmt(res.box):>30}  {a:6.3f} {b:7.3f} {times[-1]:6.1f}")
    if times:
        t = np.array(times)
        print(
            f"time per refine: median {np.median(t):.1f} ms, p90 {np.percentile(t, 90):.1f} ms over {len(t)} frames"
            + (" (with mask)" if args.mask else "")
        )
    if ious_in:
        print(f"mean IoU with ground truth: input {np.mean(ious_in):.3f} -> refined {np.mean(ious_out):.3f}")
    if args.output:
        np.savetxt(args.output, np.array(out), fmt="%.4f", delimiter=",")
        print(f"wrote {args.output}")
    return 0
