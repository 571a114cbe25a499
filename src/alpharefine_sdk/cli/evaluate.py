"""``alpharefine-sdk eval DATASET_DIR --tracker csrt [--tracker mil ...] --compare``: base trackers with
and without Alpha-Refine over every sequence; prints the table, writes ``results.json``, per-frame box
files and success/precision plots (see ``docs/evaluation.md``)."""

from __future__ import annotations

import argparse

from ._options import WRITE_BACK, add_quiet, add_tracker_opt, add_weights, add_write_back, show_progress


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="compare base trackers with and without refinement on a dataset",
        description="Run each base tracker with and without Alpha-Refine over every sequence under DATASET_DIR "
        "(OTB, LaSOT, GOT-10k, VOT, DAVIS layouts, detected per folder) and report AUC, P@20, P_norm, AO, SR, "
        "mIoU, J, fps and refine time.",
    )
    p.add_argument(
        "dataset",
        nargs="?",
        default=None,
        help="dataset folder (searched recursively) or one sequence folder (default: the sample sequence "
        "data/Crossing of a source checkout)",
    )
    p.add_argument(
        "--tracker",
        "-t",
        action="append",
        default=None,
        metavar="NAME",
        help="base tracker: mil, csrt, kcf, nano, vit, dasiamrpn, or module:factory (repeatable; default csrt)",
    )
    add_tracker_opt(p)
    add_weights(p)
    p.add_argument(
        "--compare", action="store_true", help="also run each base tracker without refinement (the comparison)"
    )
    p.add_argument(
        "--oracle",
        action="store_true",
        help="also refine the base box size centred on the ground truth (box-estimation quality alone)",
    )
    p.add_argument(
        "--gate",
        default="auto",
        metavar="auto|none|default|MIN_IOU|MODULE:OBJECT",
        help="also run with a do-no-harm gate (adds the +AR+gate rows): 'auto' (default: the gate the model's "
        "config recommends, none for converted original weights), 'none', 'default' (alpharefine_sdk.gate.Gate()), "
        "a minimum IoU such as 0.6, or an importable object with accept(input_box, refined_box)",
    )
    p.add_argument(
        "--output", "-o", default="alpharefine-eval", help="output folder (default ./alpharefine-eval); reruns resume"
    )
    add_write_back(p)
    p.add_argument("--workers", "-j", type=int, default=1, help="parallel processes (same results as serial)")
    p.add_argument(
        "--ray",
        nargs="?",
        const=True,
        default=None,
        metavar="ADDRESS",
        help="run the (tracker, sequence) runs as Ray tasks: alone, Ray's own discovery (RAY_ADDRESS, a running "
        "local instance, else a new one); or a cluster address such as auto or ray://HOST:10001 (same results; "
        "with --workers N, N actors)",
    )
    p.add_argument("--max-frames", type=int, default=None, help="use only the first N frames of each sequence")
    p.add_argument(
        "--sequence", action="append", default=None, metavar="NAME", help="only these sequences (repeatable)"
    )
    p.add_argument("--seed", type=int, default=0, help="OpenCV RNG seed set before every run (MIL is randomised)")
    p.add_argument("--no-masks", action="store_true", help="skip masks and J on sequences with mask ground truth")
    p.add_argument("--no-plots", action="store_true", help="do not write success.png / precision.png")
    p.add_argument("--device", default=None, help="refiner device (default: cuda if available, else cpu)")
    add_quiet(p)
    p.set_defaults(func=run)


def load_gate(spec: str):
    """``default`` -> ``alpharefine_sdk.gate.Gate()``; a number -> ``Gate(min_iou=number)``;
    ``module:object`` -> that object (called first when it is a class or factory without ``accept``)."""
    import importlib

    if spec == "default" or _is_number(spec):
        from ..gate import Gate

        return Gate() if spec == "default" else Gate(min_iou=float(spec))
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ValueError(f"--gate {spec!r}: use 'default', a minimum IoU such as 0.6, or module:object")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--gate {spec!r}: cannot load it ({e})") from e
    if isinstance(obj, type) or (not callable(getattr(obj, "accept", None)) and callable(obj)):
        obj = obj()
    if not callable(getattr(obj, "accept", None)):
        raise ValueError(f"--gate {spec!r}: the object has no accept(input_box, refined_box) method")
    return obj


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..eval.runner import evaluate
    from ..eval.trackers import parse_options
    from ._sample import sample_sequence

    trackers = args.tracker or ["csrt"]
    if args.dataset is None:
        args.dataset = str(sample_sequence())
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    if args.max_frames is not None and args.max_frames < 2:
        raise ValueError(f"--max-frames must be >= 2 (frame 0 initialises the tracker); got {args.max_frames}")
    if not Path(args.dataset).exists():
        raise FileNotFoundError(f"dataset folder not found: {args.dataset}")
    opts = parse_options(args.tracker_opt, trackers)
    gate = args.gate if args.gate == "auto" else (load_gate(args.gate) if args.gate and args.gate != "none" else None)
    try:
        res = evaluate(
            args.dataset,
            trackers,
            weights=args.weights,
            gate=gate,
            compare=args.compare,
            oracle=args.oracle,
            output=args.output,
            workers=args.workers,
            max_frames=args.max_frames,
            seed=args.seed,
            sequences=args.sequence,
            tracker_options=opts,
            device=args.device,
            masks=not args.no_masks,
            plots=not args.no_plots,
            progress=show_progress(args.quiet),
            write_back=WRITE_BACK[args.write_back],
            ray=args.ray,
        )
    except ValueError as e:
        if "needs its model files" in str(e):
            raise ValueError(f"{e} (on the command line: --tracker-opt TRACKER.KEY=PATH)") from e
        raise
    print(
        f"weights: {res.config['weights']}; {len(res.per_sequence)} sequences, "
        f"{sum(v['frames'] for v in res.per_sequence.values())} frames; seed {args.seed}"
    )
    print(res.table())
    for line in res.comparison_lines():
        print(line)
    print(f"results: {Path(args.output) / 'results.json'} (boxes in {Path(args.output) / 'boxes'})")
    return 0
