"""``alpharefine-sdk export WEIGHTS OUT --format onnx [--mask] [--opset N] [--overwrite]``."""

from __future__ import annotations

import argparse
from typing import Any

FORMATS = ("onnx",)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export the network to ONNX (template graph + search graph) for ONNX Runtime / OpenVINO",
        description="Export the refiner network as separate template and search graphs (the template kernel "
        "is an input of the search graph; static 256x256 crops, dynamic batch). Load the folder with "
        "Refiner.from_pretrained(WEIGHTS, backend='onnxruntime' or 'openvino', onnx_dir=OUT).",
    )
    p.add_argument(
        "weights",
        metavar="WEIGHTS",
        help="model folder, model.safetensors, original *.pth.tar, model name or Hub repo id",
    )
    p.add_argument("out_dir", metavar="OUT", help="folder to write (must be empty unless --overwrite)")
    p.add_argument("--format", default="onnx", help="export format (only 'onnx')")
    p.add_argument("--mask", action="store_true", help="also export the box + mask search graph")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (13..20, default 17)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in OUT (never other files)")
    p.add_argument(
        "--no-verify", action="store_true", help="skip the check of the graphs against PyTorch with ONNX Runtime"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json
    from types import SimpleNamespace

    from ..backends.onnx_export import DEFAULT_OPSET, MANIFEST, check_opset, export_onnx, verify_export
    from ..weights.resolve import load_source

    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}; got {args.format!r}")
    opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
    net, config = load_source(args.weights)
    model = SimpleNamespace(net=net, config=config)  # what export_onnx reads from a Refiner
    out = export_onnx(model, args.out_dir, with_mask=args.mask, opset=opset, overwrite=args.overwrite, verify=False)
    manifest = json.loads((out / MANIFEST).read_text())
    for variant, name in manifest["graphs"].items():
        f = out / name
        print(f"wrote {f}  ({variant} graph, {f.stat().st_size / 1e6:.1f} MB, opset {opset})")
    if not args.no_verify:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("not verified: onnxruntime is not installed (pip install 'alpharefine-sdk[onnx]')")
        else:
            err = verify_export(out, net, config)
            print("verified against PyTorch, max differences: " + ", ".join(f"{k} {v:.1e}" for k, v in err.items()))
    print(f"load with Refiner.from_pretrained({args.weights!r}, backend='onnxruntime', onnx_dir={str(out)!r})")
    return 0
