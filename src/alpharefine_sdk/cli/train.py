"""``alpharefine-sdk train CONFIG``: train a refiner from a JSON config (its fields: ``alpharefine_sdk.training.config.TrainConfig``).

Single process: ``alpharefine-sdk train configs/x.json``; several processes or GPUs:
``torchrun --nproc_per_node N -m alpharefine_sdk train configs/x.json``.
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a refiner from a JSON config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="training config (JSON); relative paths in it are relative to the working directory")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in out_dir")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (with a checkpoint) after this many minutes")
    p.add_argument("--total-samples", type=int, default=None, help="override total_samples from the config")
    p.add_argument("--out-dir", default=None, help="override out_dir from the config")
    p.add_argument(
        "--export-only", action="store_true", help="write out_dir/model from the last checkpoint and exit (no training)"
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bar (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig
    from ..training.trainer import train

    cfg = TrainConfig.load(args.config)
    if args.total_samples is not None:
        cfg.total_samples = args.total_samples
    if args.out_dir is not None:
        cfg.out_dir = args.out_dir
    cfg.check()
    if args.export_only:
        from pathlib import Path

        from ..training.export import export_checkpoint
        from ..training.trainer import CHECKPOINT

        print(export_checkpoint(Path(cfg.out_dir) / CHECKPOINT))
        return 0
    result = train(cfg, resume=args.resume, max_minutes=args.max_minutes, progress=args.progress)
    if "model_dir" in result:
        print(json.dumps(result, indent=1))
    return 0
