"""Base tracker vs base + Alpha-Refine over a dataset: runs, resume, worker processes, results.

Variants per base tracker ``T`` (labels in the table and ``results.json``):

* ``T``: the plain tracker (with ``compare=True`` or ``oracle=True``);
* ``T+AR``: the tracker wrapped in ``RefinedTracker`` (refined box written back every frame);
* ``T+AR+gate``: the same with a do-no-harm gate on the refiner (when a gate is given);
* ``T@oracle`` / ``T@oracle+AR`` (``oracle=True``): the plain tracker's box size centred on the
  ground-truth centre, before and after refinement (the paper's Table-1 idea: localisation is
  perfect, so only box estimation is measured; nothing is written back).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union
from typing import Sequence as Seq

import numpy as np

from ..gate import resolve_gate
from .datasets import Sequence, find_sequences, subset
from .report import EvalResults, build_results
from .runs import sequence_digest, weights_digest
from .trackers import label as tracker_label
from .trackers import make_factory

_STATE: Dict[str, Any] = {}
RUN_FORMAT = 1


def _load_refiner(weights: Any, device: Optional[str]) -> Any:
    from ..refiner import Refiner

    return Refiner.from_pretrained(weights, device=device)


def _init_worker(weights: Any, refiner: Any, gate: Any, device: Optional[str], threads: int) -> None:
    """Worker process set-up: one network per process (loaded once), its own thread budget."""
    import torch

    torch.set_num_threads(max(1, threads))
    _STATE["refiner"] = refiner if refiner is not None else _load_refiner(weights, device)
    _STATE["gate"] = gate


def _fingerprint(cfg: Mapping[str, Any], tracker: str, seq: Sequence, n: int) -> Dict[str, Any]:
    return {
        "format": RUN_FORMAT,
        "tracker": tracker,
        "tracker_options": cfg["tracker_options"].get(tracker, {}),
        "weights": cfg["weights"],
        "weights_sha256": cfg.get("weights_sha256"),
        "gate": cfg["gate"],
        "compare": cfg["compare"],
        "oracle": cfg["oracle"],
        "seed": cfg["seed"],
        "write_back": cfg.get("write_back", "auto"),
        "frames": n,
        "masks": cfg["masks"],
        "sequence": str(seq.path),
        "sequence_sha256": sequence_digest(seq, n),
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return (
            [None if (isinstance(x, float) and not np.isfinite(x)) else x for x in v.tolist()]
            if v.ndim == 1
            else v.tolist()
        )
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def _arrays(d: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: (np.array(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in d.items()}


def run_task(seq: Sequence, tracker: str, cfg: Mapping[str, Any], output: Optional[str]) -> Dict[str, Any]:
    """Run (or load, when a finished run with the same settings is on disk) one tracker on one sequence."""
    from .runs import run_base, run_refined

    n = len(seq) if cfg["max_frames"] is None else min(len(seq), int(cfg["max_frames"]))
    fp = _fingerprint(cfg, tracker, seq, n)
    lab = tracker_label(tracker)
    path = Path(output) / "runs" / lab / f"{seq.name}.json" if output else None
    done = load_run(seq, tracker, cfg, output)
    if done is not None:
        return done
    factory = make_factory(tracker, cfg["tracker_options"].get(tracker))
    refiner, gate = _STATE["refiner"], _STATE.get("gate")
    variants: Dict[str, Dict[str, Any]] = {}
    if cfg["compare"] or cfg["oracle"]:
        base = run_base(seq, n, factory, cfg["seed"], refiner.clone() if cfg["oracle"] else None)
        variants[lab] = base["base"]
        if cfg["oracle"]:
            variants[f"{lab}@oracle"] = base["oracle_in"]
            variants[f"{lab}@oracle+AR"] = base["oracle"]
    with_mask = bool(cfg["masks"] and seq.mask_paths is not None)
    r = refiner.clone()
    r.gate = None
    wb = {"auto": "auto", "on": True, "off": False}[cfg.get("write_back", "auto")]
    variants[f"{lab}+AR"] = run_refined(seq, n, factory, r, cfg["seed"], with_mask, wb)
    if gate is not None:
        g = refiner.clone()
        g.gate = gate
        variants[f"{lab}+AR+gate"] = run_refined(seq, n, factory, g, cfg["seed"], with_mask, wb)
    h, w = seq.frame(0).shape[:2]
    rec = {
        "fingerprint": fp,
        "sequence": seq.name,
        "tracker": lab,
        "frames": n,
        "image_size": [w, h],
        "variants": variants,
    }
    if path is not None:
        _write_run(path, rec)
    return rec


def load_run(seq: Sequence, tracker: str, cfg: Mapping[str, Any], output: Optional[str]) -> Optional[Dict[str, Any]]:
    """The saved record of this run when one with the same settings is on disk, else ``None``."""
    if not output:
        return None
    n = len(seq) if cfg["max_frames"] is None else min(len(seq), int(cfg["max_frames"]))
    path = Path(output) / "runs" / tracker_label(tracker) / f"{seq.name}.json"
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text())
        if rec.get("fingerprint") != _fingerprint(cfg, tracker, seq, n):
            return None
        rec["variants"] = {k: _arrays(v) for k, v in rec["variants"].items()}
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign file: run again
    rec["resumed"] = True
    return rec


def _write_run(path: Path, rec: Dict[str, Any]) -> None:
    """Box files in the usual format (``x,y,w,h`` per line, one file per variant and sequence), per-frame
    times (got10k's ``*_time.txt``), then the run record, written atomically (resume reads it)."""
    root = path.parent.parent.parent
    for variant, d in rec["variants"].items():
        folder = root / "boxes" / variant
        folder.mkdir(parents=True, exist_ok=True)
        np.savetxt(folder / f"{rec['sequence']}.txt", d["boxes"], fmt="%.4f", delimiter=",")
        np.savetxt(folder / f"{rec['sequence']}_time.txt", np.nan_to_num(d["times"], nan=0.0), fmt="%.6f")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(rec)))
    os.replace(tmp, path)


def _task_in_worker(args: Tuple[Sequence, str, Mapping[str, Any], Optional[str]]) -> Dict[str, Any]:
    return run_task(*args)


def _describe(obj: Any) -> Optional[str]:
    """A stable text for an object (its repr when its class defines one, else the class name)."""
    if obj is None:
        return None
    return repr(obj) if type(obj).__repr__ is not object.__repr__ else type(obj).__qualname__


def _sequences(data: Any, names: Optional[Seq[str]]) -> List[Sequence]:
    if isinstance(data, Sequence):
        seqs = [data]
    elif isinstance(data, (str, os.PathLike)):
        seqs = find_sequences(data)
    else:
        seqs = list(data)
        if not all(isinstance(s, Sequence) for s in seqs):
            raise TypeError(
                "data must be a dataset folder, a sequence folder, a Sequence or a list of Sequence objects"
            )
    seqs = subset(seqs, names)
    if not seqs:
        raise ValueError(
            f"no sequences found in {data}; expected OTB, LaSOT, GOT-10k, VOT or DAVIS layouts (see docs/evaluation.md)"
        )
    return seqs


def evaluate(
    data: Union[str, "os.PathLike[str]", Sequence, Seq[Sequence]],
    trackers: Seq[str] = ("csrt",),
    *,
    weights: Any = None,
    refiner: Any = None,
    gate: Any = "auto",
    compare: bool = True,
    oracle: bool = False,
    output: Optional[Union[str, "os.PathLike[str]"]] = None,
    workers: int = 1,
    max_frames: Optional[int] = None,
    seed: int = 0,
    sequences: Optional[Seq[str]] = None,
    tracker_options: Optional[Mapping[str, Mapping[str, Any]]] = None,
    device: Optional[str] = None,
    masks: bool = True,
    plots: bool = True,
    progress: bool = False,
    write_back: Union[str, bool] = "auto",
    ray: Any = None,
) -> EvalResults:
    """Run each base tracker with and without Alpha-Refine over every sequence; return the metrics.

    ``data``: a dataset folder (searched recursively), one sequence folder, or ``Sequence`` objects.
    ``trackers``: OpenCV names (``mil``, ``csrt``, ``kcf``, ``nano``, ``vit``, ``dasiamrpn``) or
    ``"module:factory"``; ``tracker_options``: ``{tracker: {param: value}}`` (model files...).
    ``refiner`` (a loaded :class:`~alpharefine_sdk.Refiner`) or ``weights`` (anything
    ``Refiner.from_pretrained`` takes; ``None`` = packaged default). ``gate``: an object with
    ``accept(input_box, refined_box)`` adds the ``+AR+gate`` variant; ``"auto"`` (default) uses the
    gate the model recommends (none for converted original weights); ``None``: no gate, so no gated variant. ``output``: write box files,
    per-run records (an interrupted run resumes from them), ``results.json``. ``workers``: processes
    (same results as serial). ``masks``: compute masks and J on sequences with mask ground truth.
    ``plots``: write ``success.png`` / ``precision.png`` to ``output`` (needs matplotlib).
    ``write_back``: "auto" (the adapters' default: OpenCV trackers are not re-initialised on the
    refined box), ``True`` (re-initialise every frame, the original's feed-back) or ``False``.
    ``ray``: ``True`` or a Ray address (``"auto"``, ``"ray://host:10001"``) runs the (tracker, sequence)
    runs as Ray tasks (``workers`` > 1: that many actors, else one per cluster CPU; same results; see
    ``docs/ray.md``).
    Returns :class:`~alpharefine_sdk.eval.report.EvalResults` (``.summary``, ``.per_sequence``,
    ``.comparisons``, ``.table()``).
    """
    trackers = list(trackers)
    if write_back != "auto" and not isinstance(write_back, bool):
        raise ValueError(f"write_back must be 'auto', True or False; got {write_back!r}")
    if not trackers:
        raise ValueError("trackers is empty; name at least one base tracker, e.g. trackers=['csrt']")
    if len({tracker_label(t) for t in trackers}) != len(trackers):
        raise ValueError(f"trackers must have distinct names; got {trackers}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 2):
        raise ValueError(f"max_frames must be an int >= 2 (frame 0 initialises the tracker); got {max_frames!r}")
    # the packaged default: worker processes and Ray actors load it themselves rather than receive it
    packaged = refiner is None and weights is None
    opts = {t: dict((tracker_options or {}).get(t, {})) for t in trackers}
    for t in trackers:
        make_factory(t, opts[t])  # fail now, with a clear message, not inside a worker
    seqs = _sequences(data, sequences)
    if weights is not None:
        wlabel = str(weights)
    elif refiner is not None:
        wlabel = getattr(refiner.config, "source", None) or "a Refiner object"
    else:
        from ..weights.resolve import DEFAULT_MODEL

        wlabel = f"packaged default ({DEFAULT_MODEL})"
    if refiner is None:  # loaded once here: resume is keyed on the weights' content
        refiner = _load_refiner(weights, device)
    if isinstance(gate, str) and gate == "auto":
        gate = refiner.gate  # the refiner's gate: by default the one its config.json recommends
    else:
        gate = resolve_gate(gate, None)  # None (no gated variant) or a gate object; anything else refused
    cfg = {
        "trackers": trackers,
        "tracker_options": opts,
        "weights": wlabel,
        "weights_sha256": weights_digest(refiner),
        "gate": _describe(gate),
        "compare": bool(compare),
        "oracle": bool(oracle),
        "seed": int(seed),
        "max_frames": max_frames,
        "masks": bool(masks),
        "write_back": write_back if write_back == "auto" else ("on" if write_back else "off"),
    }
    out = str(output) if output is not None else None
    tasks = [(s, t, cfg, out) for t in trackers for s in seqs]
    done = [load_run(s, t, cfg, out) for s, t, _, _ in tasks]
    todo = [task for task, rec in zip(tasks, done) if rec is None]
    if todo and refiner is None:
        refiner = _load_refiner(weights, device)
    if todo and ray not in (None, False):
        from .distributed import run_on_ray

        fresh = iter(
            run_on_ray(
                todo,
                address=ray,
                refiner=None if packaged else refiner,
                gate=gate,
                device=device,
                workers=workers,
                progress=progress,
            )
        )
    else:
        fresh = iter(_run_all(todo, workers, refiner, weights, gate, device, progress, packaged) if todo else [])
    records = [rec if rec is not None else next(fresh) for rec in done]
    results = build_results(records, seqs, cfg)
    if out is not None:
        results.write(out, plots=plots)
    return results


def _run_all(
    tasks: List[Tuple[Any, ...]],
    workers: int,
    refiner: Any,
    weights: Any,
    gate: Any,
    device: Optional[str],
    progress: bool,
    packaged: bool = False,
) -> List[Dict[str, Any]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="eval", unit="run", disable=not progress)
    try:
        if workers == 1 or len(tasks) == 1:
            _STATE["refiner"], _STATE["gate"] = refiner, gate
            records = []
            for t in tasks:
                bar.set_postfix_str(f"{tracker_label(t[1])} {t[0].name}")
                records.append(run_task(*t))
                bar.update()
            return records
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        ship = None if packaged else refiner if weights is None or not isinstance(weights, (str, os.PathLike)) else None
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(weights, ship, gate, device, threads),
        ) as pool:
            records = []
            for rec in pool.map(_task_in_worker, tasks):
                records.append(rec)
                bar.update()
            return records
    finally:
        bar.close()
