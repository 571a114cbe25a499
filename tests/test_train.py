"""``alpharefine-sdk train`` end to end on the tiny CI config, exact resume, and DDP (gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED, need

TINY = ROOT / "configs" / "tiny_ci.json"


def tiny_config(tmp: Path, name: str, **over) -> Path:
    """The tiny CI config with ``../shared`` pointed at the shared folder and out_dir in ``tmp``."""
    need(SHARED / "train")
    text = TINY.read_text().replace("../shared/", SHARED.as_posix() + "/")
    cfg = json.loads(text)
    cfg["out_dir"] = str(tmp / name)
    cfg.update(over)
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def _losses(log: Path):
    return [float(m.group(1)) for m in re.finditer(r"step \d+ samples \d+ loss ([0-9.]+)", log.read_text())]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real run of the tiny config through the CLI."""
    from alpharefine_sdk.cli import main

    tmp = tmp_path_factory.mktemp("train")
    cfg = tiny_config(tmp, "run")
    assert main(["train", str(cfg), "--no-progress"]) == 0
    return tmp / "run"


def test_cli_trains_and_loss_falls(tiny_run):
    losses = _losses(tiny_run / "log.txt")
    assert len(losses) >= 8
    assert np.mean(losses[-3:]) < 0.7 * losses[0], losses
    log = (tiny_run / "log.txt").read_text()
    assert "validation val_loss" in log and "finished at 320 samples" in log


def test_output_folder_loads_in_refiner_with_a_model_card(tiny_run):
    import cv2

    from alpharefine_sdk import Refiner

    folder = tiny_run / "model"
    card = (folder / "README.md").read_text()
    assert "samples seen: 320" in card and "Licences" in card and "dog" in card
    r = Refiner.from_pretrained(folder, backend="torch", device="cpu", image_format="BGR")
    assert r.config.architecture == "mnv2_cm" and r.config.extra["samples_seen"] == 320
    seq = need(SHARED / "data" / "sequences" / "otb" / "Crossing")
    gt = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    r.initialize(cv2.imread(str(seq / "img" / "0001.jpg")), gt[0])
    box, _ = r.refine(cv2.imread(str(seq / "img" / "0005.jpg")), gt[4])
    assert np.isfinite(box).all() and box[2] > 0 and box[3] > 0


def test_existing_checkpoint_needs_resume(tiny_run, tmp_path):
    from alpharefine_sdk.training.config import TrainConfig
    from alpharefine_sdk.training.trainer import Trainer

    cfg = TrainConfig.load(tiny_config(tmp_path, "again"))
    cfg.out_dir = str(tiny_run)
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(cfg)


def _state(run: Path):
    from alpharefine_sdk.training.checkpoint import load_checkpoint

    ck = load_checkpoint(run, restore_rng=False)
    return {**ck.info, "model": ck.model, "optimizer": ck.optimizer, "scheduler": ck.scheduler}


def test_resume_continues_the_same_run(tmp_path):
    """32 samples in one go == 16 samples, stop, resume to 32 (weights, optimizer, counters)."""
    from alpharefine_sdk.cli import main

    over = dict(total_samples=32, checkpoint_every_samples=1000, validation={"samples": 0}, lr_halve_every=16)
    one = tiny_config(tmp_path, "one", **over)
    two = tiny_config(tmp_path, "two", **over)
    assert main(["train", str(one), "--no-progress"]) == 0
    assert main(["train", str(two), "--no-progress", "--total-samples", "16"]) == 0
    assert _state(tmp_path / "two")["samples"] == 16
    assert main(["train", str(two), "--no-progress", "--resume"]) == 0
    a, b = _state(tmp_path / "one"), _state(tmp_path / "two")
    assert a["samples"] == b["samples"] == 32 and a["step"] == b["step"] == 4
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    """Same global batch (8) split 4 + 4 over two processes gives the weights of one process."""
    from alpharefine_sdk.training.config import TrainConfig
    from alpharefine_sdk.training.trainer import build_model

    over = dict(
        total_samples=16,
        checkpoint_every_samples=1000,
        validation={"samples": 0},
        precision="fp32",
        freeze_bn=True,
        threads=1,
    )
    single = tiny_config(tmp_path, "single", **over)
    ddp = tiny_config(tmp_path, "ddp", **over)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "alpharefine_sdk",
        "train",
        str(ddp),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    from alpharefine_sdk.cli import main

    assert main(["train", str(single), "--no-progress"]) == 0
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "over 2 process(es)" in (tmp_path / "ddp" / "log.txt").read_text()
    a, b = _state(tmp_path / "single"), _state(tmp_path / "ddp")
    assert a["samples"] == b["samples"] == 16
    torch.manual_seed(TrainConfig.load(single).seed)
    init = build_model(TrainConfig.load(single)).state_dict()
    moved = diff = 0.0
    for k, v in a["model"].items():
        if v.is_floating_point():
            moved += (v - init[k]).abs().sum().item()
            diff += (v - b["model"][k]).abs().sum().item()
    assert moved > 0
    assert diff < 1e-3 * moved, (diff, moved)


def test_checkpoint_is_safetensors_and_json_and_never_unpickles(tmp_path):
    """Item 2 of the security issue: a pickle ``checkpoint.pt`` with a payload is refused, never run."""
    import pickle

    from alpharefine_sdk.cli import main
    from alpharefine_sdk.training.checkpoint import CheckpointError, load_checkpoint

    cfg = tiny_config(tmp_path, "safe", total_samples=8, checkpoint_every_samples=1000, validation={"samples": 0})
    assert main(["train", str(cfg), "--no-progress"]) == 0
    run = tmp_path / "safe"
    assert sorted(p.name for p in run.glob("checkpoint*")) == ["checkpoint.json", "checkpoint.safetensors"]
    assert _state(run)["samples"] == 8

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "checkpoint.pt").write_bytes(pickle.dumps({"model": Payload()}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(evil)
    evil_cfg = tiny_config(tmp_path, "evil", total_samples=8)
    assert main(["train", str(evil_cfg), "--no-progress", "--export-only"]) != 0
    assert not marker.exists()

    # a torn pair (tensor file replaced after the JSON was written) is refused
    data = bytearray((run / "checkpoint.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (run / "checkpoint.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(run)


def test_iou_head_architecture_trains_and_scores(tmp_path):
    """mnv2_cmi: box losses plus the IoU head; the exported model predicts IoUs in [0, 1]."""
    from alpharefine_sdk.cli import main
    from alpharefine_sdk.training.trainer import Trainer  # noqa: F401

    cfg = tiny_config(
        tmp_path,
        "cmi",
        architecture="mnv2_cmi",
        input_size=192,
        search_factor=1.5,
        total_samples=16,
        l1_weight=5.0,
        giou_weight=2.0,
        mask_weight=1.0,
        jitter_exact_share=0.2,
        log_every_steps=1,
        validation={"root": str(SHARED / "train"), "sequences": ["dog"], "samples": 8, "every_samples": 1000},
    )
    assert main(["train", str(cfg), "--no-progress"]) == 0
    log = (tmp_path / "cmi" / "log.txt").read_text()
    assert "iou_err" in log and "val_iou_chosen" in log
    from alpharefine_sdk.nn.registry import build_net
    from alpharefine_sdk.weights.resolve import load_source

    net, config = load_source(tmp_path / "cmi" / "model")
    assert config.architecture == "mnv2_cmi" and net.iou_head is not None
    assert (config.preprocessing.input_size, config.preprocessing.search_factor) == (192, 1.5)
    net.eval()
    with torch.no_grad():
        k = net.template_kernel(torch.randn(2, 3, 192, 192))
        c, m, q = net.search_scored(torch.randn(2, 3, 192, 192), k, torch.tensor([[32.0, 32, 160, 160]] * 2))
    assert q.shape == (2, 2) and bool(((q >= 0) & (q <= 1)).all())
    assert set(build_net("mnv2_cm").state_dict()) < set(net.state_dict())


def test_sigterm_stops_with_a_checkpoint_that_resumes(tmp_path):
    """SIGTERM (or Ctrl-C) between steps: checkpoint, model folder, exit 0; --resume continues."""
    import signal
    import time

    cfg = tiny_config(tmp_path, "sig", total_samples=100000, checkpoint_every_samples=100000, validation={"samples": 0})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "alpharefine_sdk", "train", str(cfg), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = tmp_path / "sig" / "log.txt"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and "step 8 " in log.read_text()):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    text = log.read_text()
    assert "SIGTERM received" in text and "paused at" in text
    done = _state(tmp_path / "sig")["samples"]
    assert 64 <= done < 100000 and (tmp_path / "sig" / "model" / "model.safetensors").is_file()
    more = subprocess.run([*cmd, "--resume", "--total-samples", str(done + 16)], cwd=tmp_path, env=env, timeout=300)
    assert more.returncode == 0 and _state(tmp_path / "sig")["samples"] == done + 16


def test_rank_loss_prefers_the_better_box_and_weighs_by_cost():
    """The ranking term is small when the head ranks the better box higher, large when it does not,
    and a pair whose boxes are equally good costs nothing."""
    from alpharefine_sdk.training.loss import LossWeights, refiner_loss

    gt = torch.tensor([[40.0, 40, 140, 140], [40.0, 40, 140, 140]])
    refined = torch.tensor([[41.0, 40, 140, 141], [41.0, 40, 140, 141]])  # IoU ~0.98
    inp = torch.tensor([[60.0, 50, 150, 150], [41.0, 40, 140, 141]])  # worse; equal to the refined box
    z = torch.zeros(2, 192, 192)
    kw = dict(size=192, weights=LossWeights(mse=0, mask=0, iou=0, rank=1.0), input_corners=inp)

    def loss(logits):
        total, parts = refiner_loss(refined, torch.zeros(2, 192, 192), gt, z, torch.zeros(2, dtype=torch.bool),
                                    iou_logits=torch.tensor(logits), **kw)  # fmt: skip
        return float(total), parts["rank_acc"]

    right, acc_right = loss([[3.0, -1.0], [0.0, 5.0]])  # pair 2: equal boxes, any ranking
    wrong, acc_wrong = loss([[-1.0, 3.0], [5.0, 0.0]])
    assert right < 0.01 < 1.0 < wrong and (acc_right, acc_wrong) == (1.0, 0.0)


def test_iou_head_only_run_leaves_boxes_and_masks_unchanged(tmp_path):
    """trainable='iou_head': the exported model differs from its init only in the IoU head."""
    from alpharefine_sdk.cli import main
    from alpharefine_sdk.weights.resolve import load_source

    base = tiny_config(tmp_path, "base", architecture="mnv2_cmi", input_size=192, search_factor=1.5,
                       total_samples=8, validation={"samples": 0})  # fmt: skip
    assert main(["train", str(base), "--no-progress"]) == 0
    head = tiny_config(tmp_path, "head", architecture="mnv2_cmi", input_size=192, search_factor=1.5,
                       total_samples=16, init_from=str(tmp_path / "base" / "model"), trainable="iou_head",
                       rank_weight=1.0, lr=1e-2, log_every_steps=1, validation={"samples": 0})  # fmt: skip
    assert main(["train", str(head), "--no-progress"]) == 0
    assert "rank_acc" in (tmp_path / "head" / "log.txt").read_text()
    a = load_source(tmp_path / "base" / "model")[0].state_dict()
    b = load_source(tmp_path / "head" / "model")[0].state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("iou_head.") for k in changed)
