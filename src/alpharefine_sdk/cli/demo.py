"""``alpharefine-sdk demo``: the web page to try the refiner on the sample or your own video
(Gradio; ``pip install 'alpharefine-sdk[demo]'``; see ``docs/demo.md``)."""

from __future__ import annotations

import argparse

from ._options import add_weights


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="web page: track a video, see base vs refined boxes and the mask",
        description="Serve the Gradio demo on HOST:PORT (default 127.0.0.1:7860; it is not shared "
        "on the internet). Needs the [demo] extra.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    add_weights(p)
    p.add_argument(
        "--sample",
        default=None,
        metavar="SEQUENCE_DIR",
        help="sequence offered as the sample (default: data/Crossing of a source checkout)",
    )
    p.add_argument("--max-frames", type=int, default=300, help="most frames one run may track (default 300)")
    p.add_argument("--device", default=None, help="refiner device (default: cuda if available, else cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.max_frames < 2:
        raise ValueError(f"--max-frames must be >= 2 (frame 0 initialises the tracker); got {args.max_frames}")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535; got {args.port}")
    if args.sample is not None and not Path(args.sample).exists():
        raise FileNotFoundError(f"--sample: sequence folder not found: {args.sample}")
    from ..demo.app import build_app, launch

    app = build_app(weights=args.weights, device=args.device, sample=args.sample, max_frames=args.max_frames)
    print(f"alpharefine-sdk demo on http://{args.host}:{args.port} (Ctrl+C stops it)")
    launch(app, host=args.host, port=args.port, block=True)
    return 0
