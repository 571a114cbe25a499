"""Can a better use of the learned confidence beat the gate? Fit on validation, score on test.

Reads the per-box records that ``precision_eval.py --dump`` writes (ground truth, input box,
network box and the model's predicted IoUs of both) for a fitting set (validation sequences) and a
test set (the dev sequences), and compares, by mean IoU with the ground truth per jitter level:

* ``gate``: the input box when ``s_in - s_net > margin``, else the network's (what ``Gate`` does;
  the margin searched on a grid);
* ``logit blend``: centre and log-size interpolated, ``w = sigmoid(a (s_net - s_in) + b)``;
* ``error blend``: each box weighted by its predicted error, ``w = e_in^k / (e_in^k + (c e_net)^k)``
  with ``e = 1 - s``;
* ``oracle blend``: the best of 21 fixed weights per box (what no rule can beat);

and how well the predicted IoUs follow the true ones at each level (Pearson correlation; the exact
input box has a true IoU of 1 everywhere, so no correlation there).

Every rule's parameters are fitted on the fitting set only (Nelder-Mead on the mean over levels)::

    python scripts/precision_eval.py models/mnv2-cmi-v6 --sequences VALDIR --step 1 --seeds 0 1 2 --dump runs/blend/val
    python scripts/precision_eval.py models/mnv2-cmi-v6 --step 2 --dump runs/blend/dev
    python scripts/blend_study.py runs/blend/val/mnv2-cmi-v6.npz runs/blend/dev/mnv2-cmi-v6.npz
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import numpy as np


def iou_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of each row pair of two ``[N, 4]`` arrays of ``(x, y, w, h)``."""
    iw = np.clip(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def blend(inp: np.ndarray, net: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Boxes with centre ``(1 - w) c_in + w c_net`` and size ``s_in^(1 - w) s_net^w``."""
    c = (1 - w)[:, None] * (inp[:, :2] + inp[:, 2:] / 2) + w[:, None] * (net[:, :2] + net[:, 2:] / 2)
    s = np.exp((1 - w)[:, None] * np.log(inp[:, 2:]) + w[:, None] * np.log(net[:, 2:]))
    return np.concatenate([c - s / 2, s], 1)


def load(path: str) -> Dict[str, np.ndarray]:
    z = np.load(path)
    r, cols = z["records"], list(z["columns"])
    col = {c: r[:, cols.index(c)] for c in cols}
    d = {
        "level": col["level"].astype(int),
        "gt": r[:, [cols.index(c) for c in ("gx", "gy", "gw", "gh")]],
        "inp": r[:, [cols.index(c) for c in ("ix", "iy", "iw", "ih")]],
        "net": r[:, [cols.index(c) for c in ("nx", "ny", "nw", "nh")]],
        "s_net": col["s_net"],
        "s_in": col["s_in"],
    }
    if not np.isfinite(d["s_net"]).all():
        raise SystemExit(f"{path}: the model has no learned confidence (no predicted IoUs to blend with)")
    d["levels"] = np.array([str(v) for v in z["levels"]])
    return d


def _gate(d: Dict[str, np.ndarray], p) -> np.ndarray:
    return (d["s_in"] - d["s_net"] <= p[0]).astype(float)


def _logit_blend(d: Dict[str, np.ndarray], p) -> np.ndarray:
    return 1 / (1 + np.exp(-(p[0] * (d["s_net"] - d["s_in"]) + p[1])))


def _error_blend(d: Dict[str, np.ndarray], p) -> np.ndarray:
    e_in = np.clip(1 - d["s_in"], 1e-3, 1) ** p[0]
    e_net = (np.exp(p[1]) * np.clip(1 - d["s_net"], 1e-3, 1)) ** p[0]
    return e_in / (e_in + e_net)


#: name -> (weight of the network's box per record, starting parameters)
RULES: Dict[str, tuple] = {
    "gate": (_gate, [-0.01]),
    "logit blend": (_logit_blend, [20.0, 0.0]),
    "error blend": (_error_blend, [2.0, 0.0]),
}


def per_level(d: Dict[str, np.ndarray], out: np.ndarray) -> Dict[str, float]:
    return {str(name): float(out[d["level"] == i].mean()) for i, name in enumerate(d["levels"])}


def score(d: Dict[str, np.ndarray], rule: Callable, p) -> Dict[str, float]:
    return per_level(d, iou_rows(blend(d["inp"], d["net"], rule(d, p)), d["gt"]))


def main() -> int:
    from scipy.optimize import minimize

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fit", help="records to fit on (validation sequences): a precision_eval --dump .npz")
    ap.add_argument("test", help="records to score on (test sequences)")
    a = ap.parse_args()
    fit, test = load(a.fit), load(a.test)
    rows = []
    for name, d in (("fit", fit), ("test", test)):
        rows.append((name, "input", per_level(d, iou_rows(d["inp"], d["gt"]))))
        rows.append((name, "network", per_level(d, iou_rows(d["net"], d["gt"]))))
        grid = [iou_rows(blend(d["inp"], d["net"], np.full(len(d["gt"]), w)), d["gt"]) for w in np.linspace(0, 1, 21)]
        rows.append((name, "oracle blend", per_level(d, np.max(grid, 0))))
    for rule_name, (rule, p0) in RULES.items():

        def loss(p) -> float:
            return -float(np.mean(list(score(fit, rule, p).values())))

        if rule is _gate:  # a step function: search the margin on a grid
            x = min(([m] for m in np.linspace(-0.1, 0.1, 41)), key=loss)
        else:
            x = minimize(loss, p0, method="Nelder-Mead").x
        label = f"{rule_name} ({', '.join(f'{v:.3g}' for v in x)})"
        rows += [("fit", label, score(fit, rule, x)), ("test", label, score(test, rule, x))]
    levels = list(rows[0][2])
    print("Correlation of the predicted with the true IoU, per level (input box / network box):\n")
    print("| set | " + " | ".join(levels) + " |")
    print("|---|" + "---:|" * len(levels))
    for name, d in (("fit", fit), ("test", test)):
        cells = []
        for i in range(len(levels)):
            m = d["level"] == i
            r_in = np.corrcoef(d["s_in"][m], iou_rows(d["inp"][m], d["gt"][m]))[0, 1] if i else float("nan")
            r_net = np.corrcoef(d["s_net"][m], iou_rows(d["net"][m], d["gt"][m]))[0, 1]
            cells.append(f"{r_in:.2f} / {r_net:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nMean IoU with the ground truth:\n")
    print("| set | rule | " + " | ".join(levels) + " | mean |")
    print("|---|---|" + "---:|" * (len(levels) + 1))
    for name, label, s in sorted(rows, key=lambda r: r[0]):
        print(
            f"| {name} | {label} | "
            + " | ".join(f"{s[k]:.3f}" for k in levels)
            + f" | {np.mean(list(s.values())):.4f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
