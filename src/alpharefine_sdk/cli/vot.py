"""``alpharefine-sdk vot trax --tracker csrt``: the TraX tracker the VOT toolkit starts (from
``trackers.ini``); ``alpharefine-sdk vot workspace WS DATASET``: a local VOT workspace from sequences
on disk, ready for ``vot evaluate`` and ``vot analysis`` (see ``docs/vot.md``)."""

from __future__ import annotations

import argparse

from ._options import WRITE_BACK, add_tracker_opt, add_weights, add_write_back


def _common(p: argparse.ArgumentParser) -> None:
    add_tracker_opt(p)
    add_weights(p)
    p.add_argument(
        "--region",
        choices=("rectangle", "mask"),
        default="rectangle",
        help="what the tracker reports: rectangle (default) or mask (the VOT2020+ segmentation region)",
    )
    add_write_back(p)
    p.add_argument("--seed", type=int, default=0, help="OpenCV RNG seed set before each target (MIL is randomised)")
    p.add_argument("--device", default=None, help="refiner device (default: cuda if available, else cpu)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vot",
        help="VOT toolkit: the TraX tracker and a local workspace",
        description="Run a refined base tracker in the VOT toolkit (TraX protocol).",
    )
    vsub = p.add_subparsers(dest="vot_command", required=True, metavar="ACTION")
    t = vsub.add_parser(
        "trax",
        help="serve one tracker over TraX (the command in trackers.ini)",
        description="Speak TraX on stdin/stdout until the VOT toolkit quits. Needs vot-trax: "
        "pip install 'alpharefine-sdk[vot]'.",
    )
    t.add_argument(
        "--tracker", "-t", default="csrt", help="base tracker: mil, csrt, kcf, nano, vit, dasiamrpn or module:factory"
    )
    t.add_argument("--no-refine", action="store_true", help="the base tracker alone (the comparison)")
    t.add_argument("--log", default=None, metavar="FILE", help="write the TraX log to FILE")
    _common(t)
    t.set_defaults(func=run_trax)
    w = vsub.add_parser(
        "workspace",
        help="write a VOT workspace from sequences on disk (no download)",
        description="Convert the sequences under DATASET (OTB, LaSOT, GOT-10k, VOT, DAVIS layouts) "
        "to the VOT layout in WORKSPACE/sequences and write trackers.ini, config.yaml and "
        "stack.yaml; then run: vot evaluate --workspace WORKSPACE ID; vot analysis --workspace "
        "WORKSPACE ID.",
    )
    w.add_argument("workspace", help="new (or empty) folder for the workspace")
    w.add_argument("dataset", help="dataset folder (searched recursively) or one sequence folder")
    w.add_argument(
        "--tracker", "-t", action="append", default=None, metavar="NAME", help="base tracker (repeatable; default csrt)"
    )
    w.add_argument(
        "--sequence", action="append", default=None, metavar="NAME", help="only these sequences (repeatable)"
    )
    w.add_argument("--max-frames", type=int, default=None, help="write only the first N frames of each sequence")
    w.add_argument("--no-compare", action="store_true", help="do not register the plain base trackers")
    w.add_argument(
        "--stack",
        default=None,
        metavar="NAME_OR_FILE",
        help="another experiment stack (a name the toolkit knows, or a file) instead of the written one; "
        "vot-toolkit 0.9.0 runs only unsupervised experiments",
    )
    w.add_argument("--timeout", type=int, default=300, help="seconds the toolkit waits for the tracker (default 300)")
    _common(w)
    w.set_defaults(func=run_workspace)


def run_trax(args: argparse.Namespace) -> int:
    from ..eval.trackers import parse_options
    from ..integrations.vot import serve

    opts = parse_options(args.tracker_opt, [args.tracker])[args.tracker]
    serve(
        args.tracker,
        tracker_options=opts,
        weights=args.weights,
        refine=not args.no_refine,
        region=args.region,
        write_back=WRITE_BACK[args.write_back],
        seed=args.seed,
        device=args.device,
        log=args.log or False,
    )
    return 0


def run_workspace(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..eval.trackers import parse_options
    from ..integrations.vot import write_workspace

    trackers = args.tracker or ["csrt"]
    if args.max_frames is not None and args.max_frames < 2:
        raise ValueError(f"--max-frames must be >= 2 (frame 0 initialises the tracker); got {args.max_frames}")
    if not Path(args.dataset).exists():
        raise FileNotFoundError(f"dataset folder not found: {args.dataset}")
    info = write_workspace(
        args.workspace,
        args.dataset,
        trackers=trackers,
        tracker_options=parse_options(args.tracker_opt, trackers),
        sequences=args.sequence,
        max_frames=args.max_frames,
        region=args.region,
        compare=not args.no_compare,
        weights=args.weights,
        device=args.device,
        write_back=WRITE_BACK[args.write_back],
        seed=args.seed,
        stack=args.stack,
        timeout=args.timeout,
    )
    frames = sum(info["sequences"].values())
    print(
        f"VOT workspace {args.workspace}: {len(info['sequences'])} sequences, {frames} frames; "
        f"trackers {', '.join(info['trackers'])}"
    )
    ids = " ".join(info["trackers"])
    print(f"next: vot evaluate --workspace {args.workspace} {ids}")
    print(f"      vot analysis --workspace {args.workspace} --format json {ids}")
    return 0
