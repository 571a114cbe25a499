"""CPU latency of the default path, every backend and precision, and two real trackers' updates,
in one run.

    python benchmarks/cpu.py                       # packaged default model, 15 interleaved rounds
    python benchmarks/cpu.py --quick               # 5 rounds, N = 16 only
    python benchmarks/cpu.py --weights ../shared/parity/ar34_random.pth.tar   # the AR34 network
    python benchmarks/cpu.py --json out.json       # also write the raw numbers

Every round runs each measurement once, in a shuffled order, so background load hits all of
them alike; ratios are taken within a round (paired) and their median reported. Rows: the
default path (``Refiner.from_pretrained()``, ``backend="auto"``), each engine, the exact eager
reference (``backend="torch", fold_bn=False, channels_last=False``), the pre/post-processing
alone (crop, normalise, mask paste on the 640x360 frame), and the reference trackers: a
NanoTrack v2 update (OpenCV ``TrackerNano`` with ``../shared/data/nanotrack_onnx``) and a CSRT
update. Parity: corners of each path on the 43 golden crops against the exact reference, in crop
pixels (the golden 256 px crops, resized for models with other crops), and masks. The "Done when" block prints the ratios issue 17 asks for.

Tracking loop: a refine as ``RefinedTracker`` runs it, right after the tracker's own update on
the same frame. Each round adds, for each reference tracker, blocks of ``--loop-frames`` frames:
the update alone, then "update, then default refine" (box only, then box + mask). The frame time
the refiner adds (update + refine, minus the update alone) counts any slow-down each library's
worker threads cause the other, so it is what a user of ``RefinedTracker`` pays per frame; the
interleaved rows above time each call right after an unrelated one.
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
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT.parent / "shared" / "parity"
NANOTRACK = ROOT.parent / "shared" / "data" / "nanotrack_onnx" / "v2"
EXACT = "torch-eager:fp32"
# name -> (backend, precision, options)
PATHS: Dict[str, Tuple[str, str, Dict[str, Any]]] = {
    "default:fp32": ("auto", "fp32", {}),
    "torch:fp32": ("torch", "fp32", {}),
    EXACT: ("torch", "fp32", {"fold_bn": False, "channels_last": False}),
    "onnxruntime:fp32": ("onnxruntime", "fp32", {}),
    "openvino:fp32": ("openvino", "fp32", {}),
    "openvino:bf16": ("openvino", "bf16", {}),
    "torch:bf16": ("torch", "bf16", {}),
}


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


def golden_crops(size: int = 256) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The golden template and search crops (256 px), resized to ``size`` for models with other crops."""
    import cv2

    g = np.load(PARITY / "golden.npz")

    def dec(kind: str) -> np.ndarray:
        png, off = g[f"{kind}_crop_png"], g[f"{kind}_crop_png_offsets"]
        crops = [cv2.imdecode(png[off[i] : off[i + 1]], cv2.IMREAD_UNCHANGED) for i in range(len(off) - 1)]
        if size != crops[0].shape[0]:
            crops = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]
        return np.stack(crops)

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


def reference_trackers(ref_frame: np.ndarray, init_box: np.ndarray, frame: np.ndarray) -> Dict[str, Callable]:
    """``update`` of NanoTrack v2 and CSRT on the benchmark frame (BGR), each initialised on the
    reference frame; a tracker this OpenCV lacks is left out with a note."""
    import cv2

    bgr0, bgr = np.ascontiguousarray(ref_frame[:, :, ::-1]), np.ascontiguousarray(frame[:, :, ::-1])
    box = tuple(int(round(v)) for v in init_box)
    jobs: Dict[str, Callable] = {}
    try:
        params = cv2.TrackerNano_Params()
        params.backbone = str(NANOTRACK / "backbone.onnx")
        params.neckhead = str(NANOTRACK / "neckhead.onnx")
        nano = cv2.TrackerNano.create(params)
        nano.init(bgr0, box)
        jobs["ref|nanotrack"] = lambda: nano.update(bgr)
    except (AttributeError, cv2.error) as e:
        print(f"skipped NanoTrack: {e}", file=sys.stderr)
    create = getattr(cv2, "TrackerCSRT_create", None) or getattr(getattr(cv2, "TrackerCSRT", None), "create", None)
    if create is None:
        print("skipped CSRT: this OpenCV has no CSRT (install opencv-contrib)", file=sys.stderr)
    else:
        csrt = create()
        csrt.init(bgr0, box)
        jobs["ref|csrt"] = lambda: csrt.update(bgr)
    return jobs


def prepost_job(r: Any, frame: np.ndarray, box: np.ndarray) -> Callable:
    """Crop, normalise and mask paste of one refine, without the network (what the default engine does)."""
    from alpharefine_sdk.backends._common import network_input
    from alpharefine_sdk.geometry.crop import paste_mask

    mask = np.random.default_rng(0).random((256, 256), dtype=np.float32)

    def run() -> None:
        _, _, win, crop = r._prepare(frame, box, None)
        network_input(crop[None], r.config)
        paste_mask(mask, win, frame.shape[:2])

    return run


def loop_job(update: Callable, r: Any, frame: np.ndarray, box: np.ndarray, frames: int, sink: Dict) -> Callable:
    """One round of a tracking loop: ``frames`` x the tracker's update alone, then ``frames`` x
    (update, default refine), box only and box + mask. Appends the block medians to ``sink``:
    ``alone`` (update alone), ``update|<call>`` / ``refine|<call>`` (each inside the loop) and
    ``frame|<call>`` (update + refine)."""

    def block(mask: Optional[bool]) -> None:
        tu, tr, tf = [], [], []
        for _ in range(frames):
            t0 = time.perf_counter()
            update()
            t1 = time.perf_counter()
            if mask is not None:
                r.refine(frame, box, mask=mask)
            t2 = time.perf_counter()
            tu.append(t1 - t0)
            tr.append(t2 - t1)
            tf.append(t2 - t0)
        if mask is None:
            sink.setdefault("alone", []).append(float(np.median(tu)))
            return
        call = "mask" if mask else "box"
        for name, v in (("update", tu), ("refine", tr), ("frame", tf)):
            sink.setdefault(f"{name}|{call}", []).append(float(np.median(v)))

    def run() -> None:
        for mask in (None, False, True):
            block(mask)

    return run


def paired(times: Dict[str, List[float]], a: str, b: str, scale: float = 1.0) -> Optional[float]:
    """Median over rounds of ``times[a] / (times[b] * scale)`` (None if either is missing)."""
    if a not in times or b not in times:
        return None
    return float(np.median(np.array(times[a]) / (np.array(times[b]) * scale)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="any from_pretrained source (default: the packaged model)")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--targets", default="4,16", help="N for refine_many (comma-separated)")
    ap.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated subset of {', '.join(PATHS)}")
    ap.add_argument("--quick", action="store_true", help="5 rounds, N = 16 only")
    ap.add_argument("--json", default=None, help="write raw timings and parity here")
    ap.add_argument("--loop-frames", type=int, default=8, help="frames per tracking-loop block (0: no loop rows)")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.targets = 5, "16"

    from alpharefine_sdk import Refiner, refine_many

    info = machine()
    print(json.dumps(info))
    ref_frame, init_box, frame, box = load_case()
    targets = [int(n) for n in args.targets.split(",") if n]
    rng = np.random.default_rng(0)
    many_boxes = {n: [box + np.r_[rng.uniform(-8, 8, 2), 0, 0] for _ in range(n)] for n in targets}

    specs = [p for p in args.paths.split(",") if p]
    if EXACT not in specs:
        specs.append(EXACT)  # the parity reference
    refiners: Dict[str, Refiner] = {}
    for spec in specs:
        if spec not in PATHS:
            ap.error(f"unknown path {spec!r}; choose from {', '.join(PATHS)}")
        backend, precision, options = PATHS[spec]
        try:
            t = time.perf_counter()
            kw = {"device": "cpu"} if backend == "torch" else {}
            r = Refiner.from_pretrained(args.weights, backend=backend, precision=precision, gate=None, **kw, **options)
            print(f"built {spec} ({r.engine.name}) in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        except ImportError as e:
            print(f"skipped {spec}: {e}", file=sys.stderr)
            continue
        r.initialize(ref_frame, init_box)
        refiners[spec] = r
    info["default_engine"] = refiners["default:fp32"].engine.name if "default:fp32" in refiners else None
    info["architecture"] = refiners[EXACT].config.architecture

    jobs: Dict[str, Callable[[], Any]] = reference_trackers(ref_frame, init_box, frame)
    jobs["prepost|default"] = prepost_job(refiners[EXACT], frame, box)
    for spec, r in refiners.items():
        jobs[f"{spec}|box"] = lambda r=r: r.refine(frame, box)
        jobs[f"{spec}|mask"] = lambda r=r: r.refine(frame, box, mask=True)
        for n in targets:
            group = [r.clone() for _ in range(n)]
            for g in group:
                g.initialize(ref_frame, init_box)
            jobs[f"{spec}|many{n}"] = lambda group=group, n=n: refine_many(group, frame, many_boxes[n])

    loops: Dict[str, Dict[str, List[float]]] = {}
    if args.loop_frames > 0 and "default:fp32" in refiners:
        for key in [k for k in jobs if k.startswith("ref|")]:
            loops[key] = {}
            jobs[f"loop|{key}"] = loop_job(
                jobs[key], refiners["default:fp32"], frame, box, args.loop_frames, loops[key]
            )

    for _ in range(args.warmup):
        for f in jobs.values():
            f()
    for sink in loops.values():
        sink.clear()  # the warm-up blocks do not count
    times: Dict[str, List[float]] = {k: [] for k in jobs}
    order = list(jobs)
    shuffle = random.Random(0)
    for _ in range(args.repeats):
        shuffle.shuffle(order)
        for k in order:
            t = time.perf_counter()
            jobs[k]()
            times[k].append(time.perf_counter() - t)

    # parity on the golden crops against the exact reference
    e = refiners[EXACT].engine
    crops = golden_crops(refiners[EXACT].config.preprocessing.input_size)
    templates, searches, tidx, midx = crops
    kk = e.template(templates)
    ref_c, _ = e.search(searches, e.concat([kk[t : t + 1] for t in tidx]), with_mask=False)
    _, ref_m = e.search(searches[midx], e.concat([kk[t : t + 1] for t in tidx[midx]]), with_mask=True)
    errors = {spec: parity(r.engine, crops, (ref_c, ref_m)) for spec, r in refiners.items()}

    info["load_average_end"] = os.getloadavg()
    ms = lambda k: np.median(times[k]) * 1e3  # noqa: E731
    spread = lambda k: f"{np.percentile(times[k], 10) * 1e3:.1f}-{np.percentile(times[k], 90) * 1e3:.1f}"  # noqa: E731
    print()
    print(f"architecture {info['architecture']}; default engine: {info['default_engine']}")
    print()
    print(
        "| path | call | median ms | p10-p90 ms | per target ms | single / per-target | corner err px (median / max) | mask err |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, label in (("ref|nanotrack", "NanoTrack v2 update (OpenCV)"), ("ref|csrt", "CSRT update (OpenCV)")):
        if key in times:
            print(f"| reference | {label} | {ms(key):.1f} | {spread(key)} | | | | |")
    print(f"| default | pre/post-processing only (crop, normalise, mask paste) | {ms('prepost|default'):.2f} | "
          f"{spread('prepost|default')} | | | | |")  # fmt: skip
    for spec in refiners:
        single = np.array(times[f"{spec}|box"])
        name = spec.replace(":", " ") + (f" ({info['default_engine']})" if spec == "default:fp32" else "")
        for call in ["box", "mask"] + [f"many{n}" for n in targets]:
            k = f"{spec}|{call}"
            t = np.array(times[k])
            n = int(call[4:]) if call.startswith("many") else 1
            label = {"box": "refine (box)", "mask": "refine (box + mask)"}.get(call, f"refine_many, {n} targets")
            cheaper = f"{np.median(single / (t / n)):.2f}x" if n > 1 else ""
            err = errors[spec]
            perr = f"{err['corner_px_median']:.1e} / {err['corner_px_max']:.1e}" if call == "box" else ""
            merr = f"{err['mask_max']:.1e}" if call == "mask" else ""
            print(f"| {name} | {label} | {ms(k):.1f} | {spread(k)} | {np.median(t) / n * 1e3:.1f} | {cheaper} | "
                  f"{perr} | {merr} |")  # fmt: skip
    # added = frame time with the refiner - the update alone (both block medians of one round)
    loop_ratio: Dict[str, float] = {}  # "<tracker>|<call>": median over rounds of added / update alone
    for key, sink in loops.items():
        tracker = {"ref|nanotrack": "NanoTrack v2", "ref|csrt": "CSRT"}[key]
        alone = np.array(sink["alone"])
        print(f"| tracking loop, {tracker} | update alone | {np.median(alone) * 1e3:.1f} | "
              f"{np.percentile(alone, 10) * 1e3:.1f}-{np.percentile(alone, 90) * 1e3:.1f} | | | | |")  # fmt: skip
        for call, label in (("box", "refine (box)"), ("mask", "refine (box + mask)")):
            added = np.array(sink[f"frame|{call}"]) - alone
            loop_ratio[f"{key}|{call}"] = float(np.median(added / alone))
            print(f"| tracking loop, {tracker} | frame time added by a default {label} (update in the loop "
                  f"{np.median(sink[f'update|{call}']) * 1e3:.1f}, refine {np.median(sink[f'refine|{call}']) * 1e3:.1f}) | "
                  f"{np.median(added) * 1e3:.1f} | {np.percentile(added, 10) * 1e3:.1f}-{np.percentile(added, 90) * 1e3:.1f} | | "
                  f"{loop_ratio[f'{key}|{call}']:.2f}x the update alone | | |")  # fmt: skip
    print()
    nmax = max(targets) if targets else None
    done = {
        "default refine (box) / NanoTrack update (goal <= 1.3)": paired(times, "default:fp32|box", "ref|nanotrack"),
        "default refine (box + mask) / NanoTrack update (goal <= 2)": paired(times, "default:fp32|mask", "ref|nanotrack"),
        f"default refine / per-target refine_many at {nmax} (goal >= 2)": (
            1 / paired(times, f"default:fp32|many{nmax}", "default:fp32|box", nmax)
            if nmax and f"default:fp32|many{nmax}" in times else None
        ),
        "torch fp32 refine (box) / onnxruntime fp32 (goal <= 1.5)": paired(times, "torch:fp32|box", "onnxruntime:fp32|box"),
        "tracking loop: frame time added by a default refine (box) / NanoTrack update alone (goal <= 1.3)": (
            loop_ratio.get("ref|nanotrack|box")
        ),
        "tracking loop: frame time added by a default refine (box + mask) / NanoTrack update alone (goal <= 2)": (
            loop_ratio.get("ref|nanotrack|mask")
        ),
        "default pre/post-processing ms (goal well under 1)": float(ms("prepost|default")),
        "default corner error vs exact torch fp32, max crop px (goal < 1e-3)": errors.get("default:fp32", {}).get("corner_px_max"),
    }  # fmt: skip
    print("Done when (paired ratios, median over rounds):")
    for k, v in done.items():
        print(f"  {k}: {'n/a' if v is None else f'{v:.3g}'}")
    print()
    print(f"load average (1, 5, 15 min): start {info['load_average_start']}, end {info['load_average_end']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": info, "times_s": times, "loops_s": loops, "parity": errors, "done_when": done}, indent=1
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
