"""Success and precision plots (PNG) with matplotlib (optional: ``pip install 'alpharefine-sdk[eval]'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import numpy as np

from .metrics import IOU_THRESHOLDS, PIXEL_THRESHOLDS

_STYLES = {"": "-", "+AR": "-", "+AR+gate": ":", "@oracle": "--", "@oracle+AR": "--"}


def _style(variant: str) -> str:
    for suf in ("@oracle+AR", "+AR+gate", "@oracle", "+AR"):
        if variant.endswith(suf):
            return _STYLES[suf]
    return "-"


def plot_curves(results: Any, output: Any, dpi: int = 100) -> List[Path]:
    """Write ``success.png`` (legend: AUC) and ``precision.png`` (legend: P@20) to ``output``.

    Each base tracker keeps one colour; its refined variants are drawn in a darker shade of it."""
    from .._optional import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg", force=False)
    plt = require("matplotlib.pyplot")
    out = Path(output)
    variants = list(results.variants)
    bases = sorted(
        {v.split("+")[0].split("@")[0] for v in variants}, key=[v.split("+")[0].split("@")[0] for v in variants].index
    )
    cmap = plt.get_cmap("tab10")
    paths = []
    for key, thr, score, xlabel, name, title in (
        ("success_curve", IOU_THRESHOLDS, "auc", "overlap threshold", "success.png", "Success plot (AUC)"),
        (
            "precision_curve",
            PIXEL_THRESHOLDS,
            "precision",
            "location error threshold (px)",
            "precision.png",
            "Precision plot (P@20)",
        ),
    ):
        fig, ax = plt.subplots(figsize=(5.2, 4.0))
        order = sorted(variants, key=lambda v: -(results.summary[v].get(score) or 0.0))
        for v in order:
            s = results.summary[v]
            base = v.split("+")[0].split("@")[0]
            colour = np.array(cmap(bases.index(base) % 10))
            if "+AR" in v:
                colour[:3] *= 0.6
            ax.plot(
                thr,
                s[key],
                _style(v),
                color=colour,
                lw=2.2 if "+AR" in v else 1.4,
                label=f"{v} [{100 * (s.get(score) or 0):.1f}]",
            )
        weights = str(results.config.get("weights", "")).replace("\\", "/").rsplit("/", 1)[-1]
        ax.set(
            xlabel=xlabel,
            ylabel="success rate" if score == "auc" else "precision",
            title=f"{title}\nweights: {weights}" if weights else title,
            xlim=(0, thr.max()),
            ylim=(0, 1.0),
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left" if score == "auc" else "lower right", fontsize=8)
        fig.tight_layout()
        p = out / name
        fig.savefig(p, dpi=dpi)
        plt.close(fig)
        paths.append(p)
    return paths
