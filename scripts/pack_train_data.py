"""Pack a frame-subsampled copy of the training data small enough to travel to a lent GPU machine.

Every sequence of ``../shared/train`` is kept (object and scene diversity is what pays, see
docs/training.md); frames are thinned (every ``--video-step``-th frame of box videos, every
``--mask-step``-th of DAVIS) and re-encoded; ``manifest.json`` steps are multiplied accordingly so
pairs stay within 50 source frames. Writes ``OUT/train`` and ``OUT/coco128`` (copied as is). Training only: never evaluation data.

    python scripts/pack_train_data.py ../shared/train ../shared/data/coco128 .pack
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import cv2
import numpy as np


def _jpeg(src: Path, dst: Path, quality: int) -> None:
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), img, [cv2.IMWRITE_JPEG_QUALITY, quality])


def pack(train: Path, coco: Path, dest: Path, video_step: int, mask_step: int, quality: int) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    out = dest / "train"
    manifest = json.loads((train / "manifest.json").read_text())
    seqs = []
    for s in manifest["sequences"]:
        name, layout = s["name"], s["layout"]
        if layout == "davis":
            k = mask_step
            imgs = sorted((train / "davis/JPEGImages/480p" / name).glob("*.jpg"))
            rows = (train / "davis/boxes" / f"{name}.txt").read_text().splitlines()
            keep = list(range(0, len(imgs), k))
            for j, i in enumerate(keep):
                _jpeg(imgs[i], out / "davis/JPEGImages/480p" / name / f"{j:05d}.jpg", quality)
                m = out / "davis/Annotations/480p" / name / f"{j:05d}.png"
                m.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(train / "davis/Annotations/480p" / name / imgs[i].with_suffix(".png").name, m)
            (out / "davis/boxes").mkdir(parents=True, exist_ok=True)
            (out / "davis/boxes" / f"{name}.txt").write_text("\n".join(rows[i] for i in keep) + "\n")
        else:
            k = video_step
            imgs = sorted((train / "otb" / name / "img").glob("*.jpg"))
            rows = (train / "otb" / name / "groundtruth_rect.txt").read_text().splitlines()
            keep = list(range(0, len(imgs), k))
            for j, i in enumerate(keep):
                _jpeg(imgs[i], out / "otb" / name / "img" / f"{j + 1:04d}.jpg", quality)
            (out / "otb" / name / "groundtruth_rect.txt").write_text("\n".join(rows[i] for i in keep) + "\n")
        seqs.append({"name": name, "layout": layout, "frames": len(keep), "step": int(s.get("step", 1)) * k})
    (out / "manifest.json").write_text(json.dumps({"packed_from": "shared/train", "sequences": seqs}, indent=1))
    shutil.copytree(coco, dest / "coco128")
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{len(seqs)} sequences, {sum(s['frames'] for s in seqs)} frames, {size / 2**20:.1f} MiB in {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train", type=Path, help="the training pack (../shared/train)")
    ap.add_argument("coco", type=Path, help="COCO128 with masks (../shared/data/coco128)")
    ap.add_argument("out", type=Path, help="output folder (replaced): OUT/train and OUT/coco128")
    ap.add_argument("--video-step", type=int, default=4, help="keep every n-th frame of box videos")
    ap.add_argument("--mask-step", type=int, default=3, help="keep every n-th frame of DAVIS videos")
    ap.add_argument("--quality", type=int, default=65, help="JPEG quality of the re-encoded frames")
    a = ap.parse_args()
    pack(a.train, a.coco, a.out, a.video_step, a.mask_step, a.quality)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
