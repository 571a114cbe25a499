"""``alpharefine-sdk convert IN OUT_DIR [--push-to-hub REPO_ID] [--overwrite]``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert an original .pth.tar (or any source) to model.safetensors + config.json",
        description="Convert an original *.pth.tar (or any source Refiner.from_pretrained accepts: a model "
        "folder, model.safetensors, a Hub repo id) to our folder format: model.safetensors, config.json and "
        "a model card README.md. Nothing from the original pickle is executed.",
    )
    p.add_argument("source", metavar="IN", help="original *.pth.tar, model folder, model.safetensors or Hub repo id")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write (must be empty unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier save in OUT_DIR (never other files)")
    p.add_argument(
        "--push-to-hub", metavar="REPO_ID", default=None, help="also upload OUT_DIR to this Hub repo ('org/name')"
    )
    p.add_argument("--revision", default=None, help="branch to push to (created if missing; default main)")
    p.add_argument("--private", action="store_true", default=None, help="create the Hub repo as private")
    p.add_argument("--token", default=None, help="Hub token with write access (default: HF_TOKEN or the saved login)")
    p.add_argument(
        "--commit-message", default="Upload alpharefine-sdk model (converted)", help="commit message for --push-to-hub"
    )
    p.set_defaults(func=run)
    return p


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} B"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path
    from types import SimpleNamespace

    from .._files import file_sha256
    from ..weights.hub import _publish_settings, save_pretrained, upload_model_folder
    from ..weights.resolve import load_source, source_card

    out_dir = Path(args.out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty: choose an empty folder, or pass --overwrite to replace an earlier conversion"
        )
    if args.push_to_hub:
        _publish_settings(args.push_to_hub)  # bad repo id or offline: say so before converting
    net, config = load_source(args.source)

    model = SimpleNamespace(net=net, config=config)  # what save_pretrained reads from a Refiner
    out = save_pretrained(
        model, out_dir, overwrite=args.overwrite, repo_id=args.push_to_hub, card=source_card(args.source)
    )
    print(
        f"converted {args.source} (architecture {config.architecture}, {sum(p.numel() for p in net.parameters()):,} parameters)"
    )
    for name in ("model.safetensors", "config.json", "README.md"):
        f = out / name
        print(f"wrote {f}  {_size(f.stat().st_size)}  sha256 {file_sha256(f)}")
    if args.push_to_hub:
        info = upload_model_folder(
            out,
            args.push_to_hub,
            revision=args.revision,
            private=args.private,
            token=args.token,
            commit_message=args.commit_message,
        )
        print(f"pushed to {args.push_to_hub} (revision {args.revision or 'main'}): commit {getattr(info, 'oid', info)}")
        print(f"load it with Refiner.from_pretrained({args.push_to_hub!r}, revision={getattr(info, 'oid', None)!r})")
    return 0
