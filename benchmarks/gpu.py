"""GPU benchmark of the fast path (``Refiner.optimize``) and parity of every fast path.

Usage: python benchmarks/gpu.py [--weights PATH] [--reps 200] [--warmup 20] [--max-cases N] [--json OUT]

On CUDA: per-refine latency (median, p90) from a host uint8 frame for eager fp32, each option alone,
and all together (fp16, bf16), at batch 1 and for 8 and 32 targets through ``refine_many``; the
fused correlation kernel against the unfused torch ops; peak GPU memory per variant; and the corner
error of each fast path against the goldens and against exact fp32 on the shared parity cases.
Without CUDA it says so, runs the CPU parts (parity of the CPU fast paths, the fused op's torch
fallback against the unfused ops, CPU latency of eager vs optimised fp32) and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OFF = dict(precision="fp32", channels_last=False, fold_bn=False, fused_correlation=False, cuda_graph=False)
GPU_VARIANTS = {
    "eager fp32 (exact engine)": None,
    "fold_bn": dict(OFF, fold_bn=True),
    "channels_last": dict(OFF, channels_last=True),
    "fused_correlation": dict(OFF, fused_correlation=True),
    "fp16": dict(OFF, precision="fp16"),
    "bf16": dict(OFF, precision="bf16"),
    "cuda_graph (fp32)": dict(OFF, cuda_graph=True),
    "all, fp16 (optimize() defaults)": {},
    "all, bf16": dict(precision="bf16"),
    "all, fp32": dict(precision="fp32"),
}
CPU_VARIANTS = {
    "eager fp32 (exact engine)": None,
    "fold_bn + channels_last + fused, fp32": dict(precision="fp32"),
    "fold_bn + channels_last + fused, bf16": dict(precision="bf16"),
}


def _stats(ts: List[float]) -> str:
    return f"{statistics.median(ts):.3f} | {np.percentile(ts, 90):.3f}"


def _time(fn: Callable[[], object], reps: int, warmup: int, sync: bool) -> List[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        if sync:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _load_frames(seq: Path):
    import cv2

    rgb = lambda p: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)  # noqa: E731
    gt = np.loadtxt(seq / "groundtruth.txt", delimiter=",")
    return rgb(seq / "img/00000001.jpg"), rgb(seq / "img/00000021.jpg"), gt


def _golden_crops(golden):
    import cv2

    def png(key, i):
        buf, off = golden[f"{key}_png"], golden[f"{key}_png_offsets"]
        return cv2.imdecode(buf[off[i] : off[i + 1]], cv2.IMREAD_UNCHANGED)

    idx = [i for i in range(len(golden["case_name"])) if "outside" not in golden["case_tags"][i]]
    return [(png("template_crop", int(golden["template_index"][i])), png("search_crop", i), i) for i in idx]


def parity(engine, cases, golden, exact: Dict[int, np.ndarray]) -> Dict[str, float]:
    """Corner errors (px) of ``engine`` on the golden crops, against the goldens and the exact engine."""
    vs_golden, vs_exact = [], []
    for tmpl, crop, i in cases:
        c, _ = engine.search(crop[None], engine.template(tmpl[None]))
        vs_golden.append(float(np.abs(c[0] - golden["corners"][i]).max()))
        if i in exact:
            vs_exact.append(float(np.abs(c[0] - exact[i]).max()))
    if not vs_golden:  # no golden file (a machine without ../shared): latency only
        return {"max_vs_golden": float("nan"), "median_vs_golden": float("nan"), "max_vs_exact": float("nan")}
    return {
        "max_vs_golden": max(vs_golden),
        "median_vs_golden": statistics.median(vs_golden),
        "max_vs_exact": max(vs_exact) if vs_exact else float("nan"),
    }


def fused_op_timing(net, device: str, dtypes, batches, reps: int, sync: bool) -> List[str]:
    """The fused op against the unfused torch ops (correlation, conv, BN, ReLU x3)."""
    import copy

    from alpharefine_sdk.backends.triton_corr import FusedCorrelationNeck, fused_correlation
    from alpharefine_sdk.nn.correlation import pixelwise_correlation

    rows = []
    for dtype in dtypes:
        post = copy.deepcopy(net.neck.post_corr).to(device, dtype).eval()
        fused = FusedCorrelationNeck(copy.deepcopy(net.neck)).to(device, dtype)
        ws, bs = fused.layers()
        for b in batches:
            k = torch.randn(b, 256, 8, 8, device=device, dtype=dtype).relu()
            s = torch.randn(b, 256, 16, 16, device=device, dtype=dtype).relu()
            if device == "cuda":
                s = s.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                ref = post(pixelwise_correlation(k, s))
                out = fused_correlation(k, s, ws, bs)
                err = float((out.float() - ref.float()).abs().max() / ref.float().abs().max())
                t_ref = _time(lambda: post(pixelwise_correlation(k, s)), reps, 10, sync)
                t_fused = _time(lambda: fused_correlation(k, s, ws, bs), reps, 10, sync)
                t_folded = _time(lambda: fused_correlation(k, s, ws, bs, impl="torch"), reps, 10, sync)
            rows.append(
                f"| {str(dtype)[6:]} | {b} | {_stats(t_ref)} | {statistics.median(t_folded):.3f} | "
                f"{_stats(t_fused)} | {statistics.median(t_ref) / statistics.median(t_fused):.2f} | {err:.1e} |"
            )
    return rows


def _cpu_fp16_emulation(exact):
    """The fp16 fast network run on CPU (``optimize`` refuses fp16 there): an accuracy preview only."""
    from alpharefine_sdk.backends.gpu import DeviceNormalizer, FastOptions, FastTorchEngine

    eng = FastTorchEngine(exact.net, exact.config, device="cpu", options=FastOptions(precision="bf16"))
    eng.dtype, eng.precision = torch.float16, "fp16"
    eng.net = eng._build(exact.net)
    pre = exact.config.preprocessing
    eng.normalize = DeviceNormalizer(pre.mean, pre.std, torch.float16, True)
    return eng


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", default=str(SHARED / "parity/ar34_random.pth.tar"))
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--cpu-reps", type=int, default=5)
    ap.add_argument("--max-cases", type=int, default=None, help="parity on the first N golden cases only")
    ap.add_argument("--golden", default=str(SHARED / "parity/golden.npz"), help="golden outputs (parity columns)")
    ap.add_argument("--sequence", default=str(SHARED / "data/sequences/lasot/soapbox"), help="frames to time on")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()

    from alpharefine_sdk import Refiner, refine_many
    from alpharefine_sdk.backends.gpu import optimize

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    report: Dict[str, object] = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__}
    print(f"# alpharefine-sdk GPU benchmark\n\ndevice: {report['device']}, torch {torch.__version__}")
    if not cuda:
        print(
            "\nCUDA is not available: GPU latency, graph and memory numbers were NOT measured. "
            "Running the CPU parts only."
        )
    golden_path = Path(args.golden)
    if golden_path.is_file():
        golden = np.load(golden_path)
        cases = _golden_crops(golden)[: args.max_cases]
    else:
        print(f"\n{golden_path} not found: parity columns are not measured (nan), latency only.")
        golden, cases = None, []
    frame0, frame, gt = _load_frames(Path(args.sequence))
    exact = Refiner.from_pretrained(args.weights, device=device, backend="torch")

    variants = GPU_VARIANTS if cuda else CPU_VARIANTS
    reps = args.reps if cuda else args.cpu_reps
    warm = args.warmup if cuda else 2
    exact_corners = {}
    for tmpl, crop, i in cases:
        exact_corners[i] = exact.engine.search(crop[None], exact.engine.template(tmpl[None]))[0][0]

    # ----------------------------------------------------------------- latency, memory, parity
    print(f"\n## Per-refine latency from a host uint8 frame ({frame.shape[1]}x{frame.shape[0]}), ms\n")
    print(
        "N=8/N=32: one refine_many call for all targets. Peak GPU memory includes the exact fp32 network "
        "kept as the parity reference.\n"
    )
    print(
        "| variant | b=1 median | b=1 p90 | N=8 median | N=8 p90 | N=32 median | N=32 p90 | peak GPU MiB "
        "| max corner err vs golden px | vs exact fp32 px |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = {}
    for name, opts in variants.items():
        r = exact.clone() if opts is None else optimize(exact.clone(), **opts)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        r.initialize(frame0, gt[0])
        lat = {1: _time(lambda: r.refine(frame, gt[20]), reps, warm, False)}
        for n in (8, 32) if cuda else (8,):
            many = [r.clone() for _ in range(n)]
            for m in many:
                m.initialize(frame0, gt[0])
            boxes = [gt[20] + [j % 5, -(j % 3), 0, 0] for j in range(n)]
            lat[n] = _time(lambda: refine_many(many, frame, boxes), max(3, reps // 4), max(1, warm // 4), False)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        par = parity(r.engine, cases, golden, exact_corners)
        rows[name] = {
            "latency_ms": {str(k): v for k, v in lat.items()},
            "peak_mib": peak,
            "parity": par,
            "skipped": getattr(getattr(r.engine, "options", None), "skipped", {}),
        }
        cells = " | ".join(_stats(lat[n]) if n in lat else "- | -" for n in (1, 8, 32))
        peak_s = f"{peak:.0f}" if peak is not None else "not measured (no CUDA)"
        print(f"| {name} | {cells} | {peak_s} | {par['max_vs_golden']:.4f} | {par['max_vs_exact']:.4f} |")
        del r, many  # free this variant's network copy and graphs before the next peak is measured
        gc.collect()
    report["variants"] = rows
    skipped = {k: v["skipped"] for k, v in rows.items() if v["skipped"]}
    if skipped:
        print("\nSkipped on this device:", json.dumps(skipped, indent=1))

    if not cuda:
        emu = _cpu_fp16_emulation(exact)
        par = parity(emu, cases, golden, exact_corners)
        report["cpu_fp16_emulation_parity"] = par
        print(
            f"\nfp16 fast path emulated on CPU (folded, fused, channels-last, fp16 weights; parity only): "
            f"max corner err vs golden {par['max_vs_golden']:.4f} px, median {par['median_vs_golden']:.4f} px, "
            f"max vs exact fp32 {par['max_vs_exact']:.4f} px"
        )

    # ----------------------------------------------------------------- the fused op alone
    print("\n## Fused correlation + post_corr vs the unfused torch ops, ms per call\n")
    print(
        "| dtype | targets | unfused median | unfused p90 | folded torch ops median | fused median | fused p90 "
        "| speed-up vs unfused | max rel err |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    if cuda:
        from alpharefine_sdk.backends.triton_corr import _TRITON_BROKEN, triton_available

        if not triton_available():
            print("(triton is not installed: the fused rows below are the torch fallback)")
        op_rows = fused_op_timing(
            exact.net, "cuda", (torch.float32, torch.float16, torch.bfloat16), (1, 8, 32), args.reps, True
        )
        if _TRITON_BROKEN:
            print(f"(the Triton kernel failed and fell back to torch: {_TRITON_BROKEN[0]})")
    else:
        op_rows = fused_op_timing(exact.net, "cpu", (torch.float32,), (1, 8), 20, False)
        print("(CPU: the fused op is the torch fallback with folded BN; the Triton kernel is not timed)")
    print("\n".join(op_rows))
    report["fused_op_rows"] = op_rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
