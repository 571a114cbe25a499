"""The evaluation's (tracker, sequence) runs as Ray tasks: ``evaluate(..., ray=True | "ADDRESS")``
and ``alpharefine-sdk eval --ray [ADDRESS]`` (see ``docs/ray.md``).

Each Ray actor holds one copy of the network (the packaged default loaded on its node, or other
weights sent once through Ray's object store, so no weight file has to exist on the other
machines) and runs :func:`~alpharefine_sdk.eval.runner.run_task`,
exactly the code of the serial and ``workers`` paths, so the results are the same. Workers return
their records; the driver writes the box files and run records as each arrives, so an interrupted
evaluation resumes from them like a local one. The dataset must be readable at the same path on
every node (a shared file system), and the package installed in the same environment.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from .._optional import require


class _Rebuild:
    """A refiner whose engine does not pickle (a live ONNX Runtime or OpenVINO session), sent as its
    network, config and engine kind; the actor builds the same kind of engine on its node."""

    def __init__(self, refiner: Any) -> None:
        engine = refiner.engine
        self.backend = getattr(engine, "name", "torch")
        self.precision = getattr(engine, "precision", "fp32")
        self.net, self.config = refiner.net, refiner.config
        self.image_format, self.gate = refiner.image_format, refiner.gate

    def build(self, device: Optional[str]) -> Any:
        from ..backends import make_engine
        from ..refiner import Refiner

        engine = make_engine(self.backend, self.net, self.config, device=device, precision=self.precision)
        return Refiner(engine, self.config, image_format=self.image_format, gate=self.gate)


class _Worker:
    """One Ray actor: the network loaded once, then one run per call (no file writes on the node)."""

    def __init__(self, refiner: Any, gate: Any, device: Optional[str], threads: int) -> None:
        from .runner import _init_worker

        if isinstance(refiner, _Rebuild):
            refiner = refiner.build(device)
        _init_worker(None, refiner, gate, device, threads)  # refiner None: the packaged default model

    def run(self, seq: Any, tracker: str, cfg: Dict[str, Any]) -> Dict[str, Any]:
        import socket

        from .runner import run_task

        if seq.frame_paths and not Path(seq.frame_paths[0]).exists():
            raise FileNotFoundError(
                f"node {socket.gethostname()} cannot read sequence {seq.name!r} at {seq.path}: on a Ray cluster the "
                "dataset must be at the same path on every node (a shared file system, see docs/ray.md)"
            )
        return run_task(seq, tracker, cfg, None)


def connect(address: Union[bool, str, None]) -> Tuple[Any, bool]:
    """``(ray, started)``: Ray initialised for ``address`` (``True``/``None``/``""``: Ray's own
    discovery, i.e. ``RAY_ADDRESS``, then a running local instance, else a new local one). ``started``
    tells whether this call initialised Ray (and so should shut it down)."""
    ray = require("ray")
    if ray.is_initialized():
        return ray, False
    addr = None if address in (True, None, "") else str(address)
    ray.init(address=addr, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    return ray, True


def run_on_ray(
    tasks: List[Tuple[Any, str, Dict[str, Any], Optional[str]]],
    *,
    address: Union[bool, str, None],
    refiner: Any,
    gate: Any,
    device: Optional[str] = None,
    workers: int = 1,
    progress: bool = False,
) -> List[Dict[str, Any]]:
    """Run ``tasks`` (``(sequence, tracker, cfg, output)``) on Ray; records in the order of ``tasks``.

    ``workers`` > 1 sets the number of actors; otherwise one per CPU of the cluster (at most one
    per task). ``refiner=None``: each actor loads the packaged default model itself (every node has
    the package); a refiner is sent once through the object store. Each finished run is written
    under its ``output`` at once (resume)."""
    from tqdm.auto import tqdm

    from .runner import _write_run
    from .trackers import label

    ray, started = connect(address)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = max(1, min(len(tasks), workers if workers > 1 else cpus))
        actor = ray.remote(num_cpus=1)(_Worker)
        try:
            ref = None if refiner is None else ray.put(refiner)
        except TypeError:  # an engine that does not pickle: send what rebuilds it
            ref = ray.put(_Rebuild(refiner))
        pool = [actor.remote(ref, gate, device, 1) for _ in range(n)]
        pending: Dict[Any, int] = {}
        queue = list(range(len(tasks)))
        idle = list(pool)
        records: List[Optional[Dict[str, Any]]] = [None] * len(tasks)
        bar = tqdm(total=len(tasks), desc="eval (ray)", unit="run", disable=not progress)
        try:
            while queue or pending:
                while queue and idle:
                    i = queue.pop(0)
                    a = idle.pop()
                    seq, tracker, cfg, _ = tasks[i]
                    pending[a.run.remote(seq, tracker, cfg)] = (i, a)  # type: ignore[assignment]
                done, _ = ray.wait(list(pending), num_returns=1)
                for fut in done:
                    i, a = pending.pop(fut)  # type: ignore[misc]
                    seq, tracker, cfg, output = tasks[i]
                    try:
                        rec = ray.get(fut)
                    except ray.exceptions.RayTaskError as e:
                        cause = e.as_instanceof_cause()
                        raise RuntimeError(f"the Ray run of {tracker} on {seq.name} failed: {cause}") from None
                    if output:
                        _write_run(Path(output) / "runs" / label(tracker) / f"{seq.name}.json", rec)
                    records[i] = rec
                    idle.append(a)
                    bar.update()
        finally:
            bar.close()
            for a in pool:
                ray.kill(a)
        return [r for r in records if r is not None]
    finally:
        if started:
            ray.shutdown()
