"""CPU latency of every backend and precision, beside the bare eager backbone, in one run.

    python benchmarks/cpu.py                       # all paths, 15 interleaved rounds
    python benchmarks/cpu.py --quick               # 5 rounds, N = 4 only
    python benchmarks/cpu.py --json out.json       # also write the raw numbers

Every round runs each measurement once, in a shuffled order, so background load hits all of
them alike; ratios are taken within a round against the backbone forward of the same round.
Reported: median ms, p10-p90 spread, median ratio to the backbone, and for ``refine_many`` the
cost per target and how much cheaper it is than one ``refine`` per target. Parity: corners of
each path on the 43 golden crops against exact fp32, in crop pixels (256 px crops), and masks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT.parent / "shared" / "parity"
PATHS = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]


def machine() -> Dict[str, object]:
    """CPU model, cores, bf16 support and library versions."""
    flags, model = set(), platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import torch

    from alpharefine_sdk.backends._common import physical_cores

    info: Dict[str, object] = {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_start": os.getloadavg(),
    }
    for mod in ("onnxruntime", "openvino"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    return info


def load_case() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The soapbox frames (640x360) and boxes of parity case 0."""
    import cv2

    g = np.load(PARITY / "golden.npz")
    read = lambda i: cv2.cvtColor(cv2.imread(str(PARITY / g["frame_file"][i])), cv2.COLOR_BGR2RGB)  # noqa: E731
    return read(g["ref_frame"][0]), g["init_box"][0], read(g["test_frame"][0]), g["input_box"][0]


def golden_crops() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import cv2

    g = np.load(PARITY / "golden.npz")

    def dec(kind: str) -> np.ndarray:
        png, off = g[f"{kind}_crop_png"], g[f"{kind}_crop_png_offsets"]
        return np.stack([cv2.imdecode(png[off[i] : off[i + 1]], cv2.IMREAD_UNCHANGED) for i in range(len(off) - 1)])

    return dec("template"), dec("search"), g["template_index"].astype(int), g["mask_case"].astype(int)


def parity(engine, crops, ref) -> Dict[str, float]:
    """Corner and mask error of ``engine`` on the golden crops against the exact fp32 outputs ``ref``."""
    templates, searches, tidx, midx = crops
    k = engine.template(templates)
    corners, _ = engine.search(searches, engine.concat([k[t : t + 1] for t in tidx]), with_mask=False)
    _, masks = engine.search(searches[midx], engine.concat([k[t : t + 1] for t in tidx[midx]]), with_mask=True)
    err = np.abs(corners - ref[0]).max(axis=1)
    return {
        "corner_px_median": float(np.median(err)),
        "corner_px_p90": float(np.percentile(err, 90)),
        "corner_px_max": float(err.max()),
        "mask_max": float(np.abs(masks - ref[1]).max()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(PARITY / "ar34_random.pth.tar"))
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--targets", default="4,16", help="N for refine_many (comma-separated)")
    ap.add_argument("--paths", default=",".join(f"{b}:{p}" for b, p in PATHS), help="backend:precision list")
    ap.add_argument("--quick", action="store_true", help="5 rounds, N = 4")
    ap.add_argument("--json", default=None, help="write raw timings and parity here")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.targets = 5, "4"

    import torch

    from alpharefine_sdk import Refiner, refine_many
    from alpharefine_sdk.geometry.normalize import normalize_crops

    info = machine()
    print(json.dumps(info))
    ref_frame, init_box, frame, box = load_case()
    targets = [int(n) for n in args.targets.split(",") if n]
    rng = np.random.default_rng(0)
    many_boxes = {n: [box + np.r_[rng.uniform(-8, 8, 2), 0, 0] for _ in range(n)] for n in targets}
    crops = golden_crops()

    refiners: Dict[str, Refiner] = {}
    for spec in args.paths.split(","):
        backend, precision = spec.split(":")
        try:
            t = time.perf_counter()
            kw = {"device": "cpu"} if backend == "torch" else {}
            r = Refiner.from_pretrained(args.weights, backend=backend, precision=precision, **kw)
            print(f"built {spec} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        except ImportError as e:
            print(f"skipped {spec}: {e}", file=sys.stderr)
            continue
        r.initialize(ref_frame, init_box)
        refiners[spec] = r

    exact = refiners.get("torch:fp32") or Refiner.from_pretrained(args.weights, device="cpu")
    pre = exact.config.preprocessing
    x = torch.from_numpy(normalize_crops(crops[1][:1], pre.mean, pre.std))
    backbone = exact.net.feature_extractor

    def run_backbone() -> None:
        with torch.inference_mode():
            backbone(x, ("layer3",))

    jobs: Dict[str, Callable[[], None]] = {"backbone": run_backbone}
    for spec, r in refiners.items():
        jobs[f"{spec}|box"] = lambda r=r: r.refine(frame, box)
        jobs[f"{spec}|mask"] = lambda r=r: r.refine(frame, box, mask=True)
        for n in targets:
            group = [r.clone() for _ in range(n)]
            for g in group:
                g.initialize(ref_frame, init_box)
            jobs[f"{spec}|many{n}"] = lambda group=group, n=n: refine_many(group, frame, many_boxes[n])

    for _ in range(args.warmup):
        for f in jobs.values():
            f()
    times: Dict[str, List[float]] = {k: [] for k in jobs}
    order = list(jobs)
    shuffle = random.Random(0)
    for _ in range(args.repeats):
        shuffle.shuffle(order)
        for k in order:
            t = time.perf_counter()
            jobs[k]()
            times[k].append(time.perf_counter() - t)

    # parity on the golden crops against exact fp32
    e = exact.engine
    templates, searches, tidx, midx = crops
    kk = e.template(templates)
    ref_c, _ = e.search(searches, e.concat([kk[t : t + 1] for t in tidx]), with_mask=False)
    _, ref_m = e.search(searches[midx], e.concat([kk[t : t + 1] for t in tidx[midx]]), with_mask=True)
    errors = {spec: parity(r.engine, crops, (ref_c, ref_m)) for spec, r in refiners.items()}

    info["load_average_end"] = os.getloadavg()
    bb = np.array(times["backbone"])
    print()
    print(
        "| path | call | median ms | p10-p90 ms | x backbone | per target ms | single / per-target | corner err px (median / max) | mask err |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| torch eager | bare backbone forward 1x3x256x256 | {np.median(bb) * 1e3:.1f} | "
        f"{np.percentile(bb, 10) * 1e3:.1f}-{np.percentile(bb, 90) * 1e3:.1f} | 1.00 | | | | |"
    )
    for spec in refiners:
        single = np.array(times[f"{spec}|box"])
        for call in ["box", "mask"] + [f"many{n}" for n in targets]:
            t = np.array(times[f"{spec}|{call}"])
            n = int(call[4:]) if call.startswith("many") else 1
            label = {"box": "refine (box)", "mask": "refine (box + mask)"}.get(call, f"refine_many, {n} targets")
            per = np.median(t) / n
            cheaper = f"{np.median(single / (t / n)):.2f}x" if n > 1 else ""
            err = errors[spec]
            perr = f"{err['corner_px_median']:.1e} / {err['corner_px_max']:.1e}" if call == "box" else ""
            merr = f"{err['mask_max']:.1e}" if call == "mask" else ""
            print(
                f"| {spec.replace(':', ' ')} | {label} | {np.median(t) * 1e3:.1f} | {np.percentile(t, 10) * 1e3:.1f}-"
                f"{np.percentile(t, 90) * 1e3:.1f} | {np.median(t / bb):.2f} | {per * 1e3:.1f} | {cheaper} | {perr} | {merr} |"
            )
    print()
    print(f"load average (1, 5, 15 min): start {info['load_average_start']}, end {info['load_average_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "times_s": times, "parity": errors}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
