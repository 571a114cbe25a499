"""Write the shipped model's README.md from the training model card, the gate choice and the held-out
evaluation (``choose_gate.py`` and ``heldout_eval.py`` outputs).

    python scripts/model_card.py --model ../runs/mnv2-shared-v1/model --gate ../runs/gate/gate_grid.json \
        --heldout ../runs/heldout --dest models/mnv2-shared-v1 --status "opt-in"
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder written by alpharefine-sdk train")
    p.add_argument("--gate", required=True, help="gate_grid.json from choose_gate.py")
    p.add_argument("--heldout", required=True, help="output folder of heldout_eval.py")
    p.add_argument("--dest", required=True, help="folder to create inside the package")
    p.add_argument("--status", required=True, help="one paragraph: default or opt-in, and why")
    p.add_argument("--commands", default="", help="markdown with the exact commands")
    p.add_argument(
        "--extra-table",
        action="append",
        default=[],
        metavar="TABLE_MD",
        help="another held-out table to append (e.g. a run with --write-back on); repeatable",
    )
    args = p.parse_args(argv)

    src, dest = Path(args.model), Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "model.safetensors", dest / "model.safetensors")
    train_card = (src / "README.md").read_text()
    gate = json.loads(Path(args.gate).read_text())
    held = json.loads((Path(args.heldout) / "results.json").read_text())
    # The gate evaluated on the held-out sequences becomes the model's recommended gate
    # (Refiner.from_pretrained(gate="auto") applies it).
    config = json.loads((src / "config.json").read_text())
    config.setdefault("extra", {})["gate"] = {k: v for k, v in held["gate"].items() if v is not None}
    config["extra"].setdefault("eval_results", [])  # {"dataset", "metric", "value", "name"}: the card's model-index
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    table = (Path(args.heldout) / "table.md").read_text()
    posthoc = Path(args.heldout) / "posthoc.md"
    if posthoc.is_file():
        table = table.rstrip() + "\n" + posthoc.read_text()
    for extra in args.extra_table:
        text = Path(extra).read_text()
        text = text[text.find("## Base trackers") :] if "## Base trackers" in text else text
        table = table.rstrip() + "\n\n" + text
    g = held["gate"]
    lines = [
        train_card.rstrip(),
        "",
        "## Status",
        "",
        args.status,
        "",
        "## Held-out evaluation",
        "",
        f"Test sequences (never used for training, validation or the gate): {', '.join(held['sequences'])} "
        "(`../shared/data/sequences`: OTB, VOT, GOT-10k, LaSOT and DAVIS layouts). Gate used: "
        f"min_iou {g['min_iou']}, area ratio {g['area_ratio'][0]}..{g['area_ratio'][1]}, max_iou {g['max_iou']}"
        + (f", score_margin {g['score_margin']}. " if g.get("score_margin") is not None else ". ")
        + "CIs: paired bootstrap over the 7 sequences (10,000 resamples). Identity = the input box unchanged.",
        "",
        table.replace("## ", "### ").rstrip(),
        "",
        "## Gate choice (validation sequences only)",
        "",
        f"Sequences: {', '.join(gate['sequences'])}; inputs: {gate['counts']}. Mean IoU with the ground truth "
        "of the gate's output, best gates first:",
        "",
        "| gate | " + " | ".join(k for k in gate["counts"]) + " | mean |",
        "|---|" + "---:|" * (len(gate["counts"]) + 1),
    ]
    shown = gate["rows"][:6] + [r for r in gate["rows"] if r["gate"].startswith(("identity", "none"))]
    for r in shown:
        lines.append(f"| {r['gate']} | " + " | ".join(f"{r[k]:.3f}" for k in gate["counts"]) + f" | {r['mean']:.3f} |")
    if args.commands:
        lines += ["", "## Commands", "", args.commands]
    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.weights.model_card import render_model_card

    # The one card renderer: Hub metadata (licence, datasets, model-index from config.json's
    # extra.eval_results) on top of the text assembled above.
    (dest / "README.md").write_text(render_model_card(ModelConfig.from_dict(config), body="\n".join(lines) + "\n"))
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
