"""Turn run records into metrics, the comparison table, ``results.json`` and plots."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional
from typing import Sequence as Seq

import numpy as np

from . import metrics as M
from .datasets import Sequence

SCALARS = ("auc", "precision", "norm_precision", "ao", "sr50", "sr75", "miou", "mask_j", "fps", "refine_ms", "gated")
CURVES = ("success_curve", "precision_curve", "norm_precision_curve")
COLUMNS = (  # (key, header, scale, format)
    ("auc", "AUC", 100, "{:.1f}"),
    ("precision", "P@20", 100, "{:.1f}"),
    ("norm_precision", "P_norm", 100, "{:.1f}"),
    ("ao", "AO", 100, "{:.1f}"),
    ("sr50", "SR0.5", 100, "{:.1f}"),
    ("sr75", "SR0.75", 100, "{:.1f}"),
    ("miou", "mIoU", 100, "{:.1f}"),
    ("mask_j", "J", 100, "{:.1f}"),
    ("fps", "fps", 1, "{:.1f}"),
    ("refine_ms", "refine ms", 1, "{:.1f}"),
)
PAIRS = (("", "+AR"), ("", "+AR+gate"), ("@oracle", "@oracle+AR"))


def _num(v: Any) -> Optional[float]:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class EvalResults:
    """Metrics of an evaluation run. ``summary[variant]`` and ``per_sequence[seq][variant]`` hold the
    scalars (fractions in 0..1, ``fps``, ``refine_ms``; ``None`` where not applicable); ``summary``
    also holds the curves. ``comparisons[f"{a} -> {b}"][metric]`` is a paired bootstrap CI over
    sequences of ``b - a`` (BCa; none below 5 sequences, with a warning instead; see
    :func:`~alpharefine_sdk.eval.metrics.paired_bootstrap_ci`)."""

    config: Dict[str, Any]
    variants: List[str]
    summary: Dict[str, Dict[str, Any]]
    per_sequence: Dict[str, Dict[str, Any]]
    comparisons: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def table(self, markdown: bool = False) -> str:
        """The summary table (percentages for the box/mask metrics)."""
        rows = [["tracker"] + [c[1] for c in COLUMNS]]
        for v in self.variants:
            s = self.summary[v]
            rows.append([v] + ["-" if s.get(k) is None else fmt.format(s[k] * scale) for k, _, scale, fmt in COLUMNS])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        if markdown:
            lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
            lines.insert(
                1, "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
            )
            return "\n".join(lines)
        return "\n".join(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows
        )

    def comparison_lines(self) -> List[str]:
        out = []
        warn = None
        for pair, d in self.comparisons.items():
            parts = []
            for k in ("auc", "miou"):
                c = d.get(k)
                if c:
                    name = "AUC" if k == "auc" else "mIoU"
                    if c.get("low") is None:
                        parts.append(f"{name} {100 * c['mean']:+.1f}")
                        warn = warn or c.get("warning")
                    else:
                        parts.append(
                            f"{name} {100 * c['mean']:+.1f} (95% CI {100 * c['low']:+.1f} .. {100 * c['high']:+.1f})"
                        )
            out.append(f"{pair}: " + ", ".join(parts) + f" over {d['sequences']} sequences")
        if warn:
            out.append(f"warning: {warn}")
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format_version": 1,
            "config": self.config,
            "variants": self.variants,
            "summary": self.summary,
            "comparisons": self.comparisons,
            "sequences": self.per_sequence,
        }

    def write(self, output: Any, plots: bool = True) -> List[Path]:
        """Write ``results.json``, ``table.md`` and (matplotlib installed) ``success.png``/``precision.png``."""
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(self.to_dict(), indent=1))
        (out / "table.md").write_text(self.table(markdown=True) + "\n\n" + "\n".join(self.comparison_lines()) + "\n")
        written = [out / "results.json", out / "table.md"]
        if plots:
            from ..errors import MissingDependencyError
            from .plots import plot_curves

            try:
                written += plot_curves(self, out)
            except MissingDependencyError as e:
                warnings.warn(f"plots skipped: {e}", stacklevel=2)
        return written


def _seq_metrics(rec: Mapping[str, Any], d: Mapping[str, Any], gt: np.ndarray) -> Dict[str, Any]:
    m = M.sequence_metrics(d["boxes"], gt, image_size=tuple(rec["image_size"]), times=d["times"])
    rms = np.asarray(d.get("refine_ms", []), dtype=np.float64)
    js = np.asarray(d.get("mask_j", []), dtype=np.float64)
    m["refine_ms"] = float(rms.mean()) if rms.size else float("nan")
    m["refine_ms_all"] = rms
    m["mask_j"] = float(js.mean()) if js.size else float("nan")
    rf = d.get("refined_frames")
    m["gated"] = float(d.get("gated_frames", 0)) / rf if rf else float("nan")
    m["gated_counts"] = (int(d.get("gated_frames", 0)), int(rf or 0))
    return m


def _order(records: Seq[Mapping[str, Any]], trackers: Seq[str]) -> List[str]:
    from .trackers import label

    present = {v for r in records for v in r["variants"]}
    out = []
    for t in trackers:
        lab = label(t)
        out += [v for v in (lab, f"{lab}+AR", f"{lab}+AR+gate", f"{lab}@oracle", f"{lab}@oracle+AR") if v in present]
    return out


def build_results(records: Seq[Mapping[str, Any]], seqs: Seq[Sequence], cfg: Mapping[str, Any]) -> EvalResults:
    by_name = {s.name: s for s in seqs}
    variants = _order(records, cfg["trackers"])
    per_var: Dict[str, List[Dict[str, Any]]] = {v: [] for v in variants}
    per_seq: Dict[str, Dict[str, Any]] = {}
    for rec in records:
        seq = by_name[rec["sequence"]]
        gt = seq.gt[: rec["frames"]]
        entry = per_seq.setdefault(seq.name, {"kind": seq.kind, "frames": rec["frames"], "path": str(seq.path)})
        for v, d in rec["variants"].items():
            m = _seq_metrics(rec, d, gt)
            m["sequence"] = seq.name
            per_var[v].append(m)
            entry[v] = {k: _num(m.get(k)) for k in SCALARS}
    summary: Dict[str, Dict[str, Any]] = {}
    for v in variants:
        ms = per_var[v]
        s = M.summarize(ms)
        pooled = np.concatenate([m["refine_ms_all"] for m in ms]) if ms else np.array([])
        g, n = (sum(m["gated_counts"][i] for m in ms) for i in (0, 1))
        row = {k: _num(s.get(k)) for k in SCALARS if k in s}
        row["mask_j"] = _num(s.get("mask_j"))
        row["refine_ms"] = _num(pooled.mean()) if pooled.size else None
        row["gated"] = g / n if n else None
        row.update({k: np.asarray(s[k]).tolist() for k in CURVES})
        row["sequences"], row["frames"] = s["sequences"], s["frames"]
        summary[v] = row
    comparisons = _comparisons(variants, per_var, cfg["trackers"])
    config = {k: v for k, v in cfg.items()}
    return EvalResults(config, variants, summary, per_seq, comparisons)


def _comparisons(
    variants: List[str], per_var: Mapping[str, List[Dict[str, Any]]], trackers: Seq[str]
) -> Dict[str, Any]:
    from .trackers import label

    out: Dict[str, Any] = {}
    for t in trackers:
        lab = label(t)
        for a_suf, b_suf in PAIRS:
            a, b = lab + a_suf, lab + b_suf
            if a not in per_var or b not in per_var:
                continue
            A = {m["sequence"]: m for m in per_var[a]}
            B = {m["sequence"]: m for m in per_var[b]}
            names = [n for n in A if n in B]
            d: Dict[str, Any] = {"sequences": len(names)}
            for k in ("auc", "miou", "ao"):
                x = np.array([A[n][k] for n in names], dtype=float)
                y = np.array([B[n][k] for n in names], dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                if ok.any():
                    d[k] = M.paired_bootstrap_ci(x[ok], y[ok], n=10000, seed=0)
            out[f"{a} -> {b}"] = d
    return out
