"""The training loop: model set-up, Adam with a halving schedule, mixed precision, DDP,
periodic validation, checkpoints that resume exactly, and the exported model folder."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn

from ..boxes import iou, xyxy_to_xywh
from ..geometry.normalize import normalize_crops_torch
from ..nn.arnet import RefinerNet
from ..nn.registry import build_net
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import BatchStream, WorkerStream, build_sampler, build_validation
from .loss import TrainForward, rank_accuracy, refiner_loss

MODEL_DIR = "model"


# ---------------------------------------------------------------------------------------- set-up
def build_model(cfg: TrainConfig) -> RefinerNet:
    """Untrained network, ImageNet backbone if configured, early blocks frozen."""
    net = build_net(cfg.architecture)
    trunk = net.feature_extractor
    if cfg.backbone_init:
        if not hasattr(trunk, "features"):
            raise ValueError(f"backbone_init is for the MobileNetV2 trunk; {cfg.architecture!r} has none")
        from ..nn.mobilenet import load_imagenet_features

        load_imagenet_features(trunk, cfg.backbone_init)
    if cfg.freeze_blocks:
        if not hasattr(trunk, "freeze"):
            raise ValueError(f"freeze_blocks needs a trunk with blocks; {cfg.architecture!r} has none")
        trunk.freeze(cfg.freeze_blocks)
    if cfg.init_from:
        init_weights(net, cfg.init_from)
    if cfg.trainable == "iou_head":
        if net.iou_head is None:
            raise ValueError(
                f"trainable='iou_head' needs an architecture with an IoU head; {cfg.architecture!r} has none"
            )
        for name, p in net.named_parameters():
            p.requires_grad_(name.startswith("iou_head."))
    return net


def init_weights(net: RefinerNet, source: str) -> None:
    """Start from a trained model's weights (any source ``Refiner.from_pretrained`` takes).

    Every tensor of ``source`` must fit ``net``; tensors only ``net`` has (a new head) keep their
    fresh initialisation.
    """
    from ..weights.resolve import load_source

    src, _ = load_source(source)
    own = net.state_dict()
    theirs = src.state_dict()
    extra = sorted(set(theirs) - set(own))
    bad = [k for k in theirs if k in own and tuple(theirs[k].shape) != tuple(own[k].shape)]
    if extra or bad:
        raise ValueError(f"init_from {source!r} does not fit: unknown keys {extra[:3]}, wrong shapes {bad[:3]}")
    own.update(theirs)
    net.load_state_dict(own)


def set_train_mode(net: RefinerNet, cfg: TrainConfig) -> None:
    """Train mode, except frozen blocks, backbone BN (``backbone_bn='eval'``) and all BN with ``freeze_bn``;
    with ``trainable='iou_head'`` only the IoU head is in train mode."""
    if cfg.trainable == "iou_head":
        net.eval()
        net.iou_head.train(not cfg.freeze_bn)
        return
    net.train()
    trunk = net.feature_extractor
    for m in trunk.modules():
        if isinstance(m, nn.BatchNorm2d) and (
            cfg.backbone_bn == "eval" or not any(p.requires_grad for p in m.parameters())
        ):
            m.eval()
    if cfg.freeze_bn:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def _native_cpu_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (else torch emulates it, slowly)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the query: assume native
        return True


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


class _Dist:
    """torchrun environment (single process when absent)."""

    def __init__(self, device: torch.device) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


# ---------------------------------------------------------------------------------------- trainer
class _StopRequest:
    """SIGINT / SIGTERM between two steps: the run stops as if ``max_minutes`` had passed (a
    checkpoint that ``--resume`` continues, the model folder). A second signal acts as usual.
    Single-process runs only: DDP processes must stop together."""

    def __init__(self, enabled: bool) -> None:
        self.requested: Optional[str] = None
        self._old: Dict[int, Any] = {}
        if not enabled or threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = signal.Signals(signum).name
        self.restore()

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


class Trainer:
    """Runs one training configuration; ``run()`` trains until ``total_samples`` or ``max_minutes``."""

    def __init__(self, cfg: TrainConfig, *, resume: bool = False, progress: Optional[bool] = None) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.threads)
        dev = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dist = _Dist(torch.device(dev))
        if dev == "cuda":
            dev = f"cuda:{self.dist.local_rank}"
            torch.cuda.set_device(self.dist.local_rank)
        self.device = torch.device(dev)
        if cfg.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision 'fp16' needs a CUDA device; use 'bf16' on CPU")
        if cfg.batch_size % self.dist.world:
            raise ValueError(f"batch_size {cfg.batch_size} must divide by the {self.dist.world} processes")
        self.local_batch = cfg.batch_size // self.dist.world
        self.out = Path(cfg.out_dir)
        self.progress = sys.stderr.isatty() if progress is None else progress
        ckpt = self.out / CHECKPOINT
        if ckpt.exists() and not resume:
            raise FileExistsError(f"{ckpt} exists: pass --resume to continue that run, or choose another out_dir")
        if resume and not ckpt.exists():
            raise FileNotFoundError(f"--resume given but {ckpt} does not exist")

        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.net = build_model(cfg).to(self.device)
        if cfg.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        steps_per_halving = max(1, cfg.lr_halve_every // cfg.batch_size)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=steps_per_halving, gamma=0.5)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.weights = cfg.loss_weights()
        self.samples = 0
        self.step = 0
        self.elapsed = 0.0
        self.history: list = []
        if resume:
            self._load(ckpt)
        model: nn.Module = TrainForward(self.net)
        if self.dist.enabled:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.model = model
        self.sampler, self.source_counts = build_sampler(cfg)
        self.crops = cfg.preprocessing()
        self.val = build_validation(cfg.validation, cfg.max_side, self.crops) if self.dist.main else None

    # ------------------------------------------------------------------ logging
    def log(self, msg: str) -> None:
        if not self.dist.main:
            return
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.txt", "a") as f:
            f.write(line + "\n")
        if not self.progress:
            print(line, flush=True)

    # ------------------------------------------------------------------ tensors
    def _tensors(self, b: Dict[str, np.ndarray]):
        pre_mean, pre_std = self.crops.mean, self.crops.std  # the exported config.json's normalisation
        fmt = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        t = normalize_crops_torch(torch.from_numpy(b["template"]).to(self.device), pre_mean, pre_std)
        s = normalize_crops_torch(torch.from_numpy(b["search"]).to(self.device), pre_mean, pre_std)
        t, s = t.contiguous(memory_format=fmt), s.contiguous(memory_format=fmt)
        gt = torch.from_numpy(b["corners"]).to(self.device)
        inp = torch.from_numpy(b["input_corners"]).to(self.device)
        mask = torch.from_numpy(b["mask"]).to(self.device).float() / 255.0
        has = torch.from_numpy(b["has_mask"]).to(self.device)
        return t, s, gt, inp, mask, has

    # ------------------------------------------------------------------ training
    def _forward_loss(self, model: nn.Module, b: Dict[str, np.ndarray]):
        """Forward ``b`` through ``model`` and the loss: ``(loss, parts, corners, iou_logits)``."""
        t, s, gt, inp, mask, has = self._tensors(b)
        with _autocast(self.device, self.cfg.precision):
            corners, logits, iou_logits = model(t, s, inp)
        loss, parts = refiner_loss(
            corners, logits, gt, mask, has, size=t.shape[-1], weights=self.weights, iou_logits=iou_logits,
            input_corners=inp,
        )  # fmt: skip
        return loss, parts, corners, iou_logits

    def train_step(self, b: Dict[str, np.ndarray]) -> Dict[str, float]:
        cfg = self.cfg
        loss, parts, _, _ = self._forward_loss(self.model, b)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            self.opt.step()
        self.sched.step()
        self.step += 1
        self.samples += cfg.batch_size
        return parts

    @torch.no_grad()
    def validate(self) -> Optional[Dict[str, float]]:
        """Validation loss and IoU of the input (jittered) and refined boxes on held-out sequences."""
        if self.val is None:
            return None
        self.net.eval()
        v, out, scores, losses = self.val, [], [], []
        bs = max(1, self.local_batch * 2)
        fwd = TrainForward(self.net)
        for i in range(0, len(v["corners"]), bs):
            part = {k: a[i : i + bs] for k, a in v.items()}
            _, parts, corners, iou_logits = self._forward_loss(fwd, part)
            losses.append(parts["loss"] * len(corners))
            out.append(corners.float().cpu().numpy())
            if iou_logits is not None:
                scores.append(torch.sigmoid(iou_logits.float()).cpu().numpy())
        set_train_mode(self.net, self.cfg)
        pred = np.concatenate(out)
        gt_box = xyxy_to_xywh(v["corners"])
        before = iou(xyxy_to_xywh(v["input_corners"]), gt_box)
        after = iou(xyxy_to_xywh(pred), gt_box)
        result = {
            "val_loss": float(np.sum(losses) / len(pred)),
            "val_iou_before": float(before.mean()),
            "val_iou_after": float(after.mean()),
            "val_better_share": float((after > before).mean()),
        }
        if scores:
            q = np.concatenate(scores)
            chosen = np.where(q[:, 0] >= q[:, 1], after, before)
            result["val_iou_chosen"] = float(chosen.mean())
            result["val_iou_err"] = float(np.abs(q - np.stack([after, before], 1)).mean())
            target = torch.from_numpy(np.stack([after, before], 1))
            result["val_rank_acc"] = rank_accuracy(torch.from_numpy(q).double(), target.double())
        return result

    def run(self, max_minutes: Optional[float] = None) -> Dict[str, Any]:
        """Train until ``total_samples`` (then export the model folder) or until ``max_minutes``."""
        cfg = self.cfg
        set_train_mode(self.net, cfg)
        if self.dist.main:
            self.log(
                f"start {cfg.name}: samples {self.samples}/{cfg.total_samples}, global batch {cfg.batch_size} "
                f"over {self.dist.world} process(es), device {self.device}, precision {cfg.precision}, "
                f"sources {self.source_counts}, validation {list(cfg.validation.sequences)}"
            )
            if cfg.precision == "bf16" and self.device.type == "cpu" and not _native_cpu_bf16():
                self.log(
                    "note: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so bf16 runs emulated and "
                    'several times slower than fp32; set "precision": "fp32" in the config'
                )
        args = (self.sampler, self.samples, self.local_batch, cfg.batch_size)
        kw = dict(offset=self.dist.rank * self.local_batch, prefetch=cfg.prefetch_batches)
        if cfg.num_workers > 0:
            stream = WorkerStream(*args, workers=cfg.num_workers, **kw)
        else:
            stream = BatchStream(*args, **kw)
        bar = None
        if self.progress and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=cfg.total_samples, initial=self.samples, unit="sample", dynamic_ncols=True)
        t0, s0 = time.time(), self.samples
        t_chunk, s_chunk = t0, self.samples
        next_ckpt = (self.samples // cfg.checkpoint_every_samples + 1) * cfg.checkpoint_every_samples
        next_val = (self.samples // cfg.validation.every_samples + 1) * cfg.validation.every_samples
        avg: Dict[str, float] = {}
        stopped_early = False
        stop = _StopRequest(enabled=not self.dist.enabled)
        try:
            while self.samples < cfg.total_samples:
                parts = self.train_step(next(stream))
                for k, val in parts.items():
                    avg[k] = 0.9 * avg.get(k, val) + 0.1 * val
                if bar is not None:
                    bar.update(cfg.batch_size)
                    bar.set_postfix(
                        loss=f"{avg['loss']:.4f}",
                        px=f"{avg['corner_px']:.1f}",
                        sps=f"{(self.samples - s0) / max(time.time() - t0, 1e-9):.1f}",
                    )
                if self.step % cfg.log_every_steps == 0:
                    now = time.time()
                    sps = (self.samples - s_chunk) / max(now - t_chunk, 1e-9)
                    t_chunk, s_chunk = now, self.samples
                    extra = "".join(f" {k} {avg[k]:.3f}" for k in ("iou_err", "rank_acc") if k in avg)
                    self.log(
                        f"step {self.step} samples {self.samples} loss {avg['loss']:.5f} corner_rms_px "
                        f"{avg['corner_px']:.2f} iou {avg['iou']:.3f} bce {avg['bce']:.4f}{extra} "
                        f"lr {self.sched.get_last_lr()[0]:.2e} samples/s {sps:.1f}"
                    )
                if self.samples >= next_val and self.samples < cfg.total_samples:
                    next_val += cfg.validation.every_samples
                    m = self.validate()
                    if m:
                        self.history.append({"samples": self.samples, **m})
                        self.log("validation " + " ".join(f"{k} {v:.4f}" for k, v in m.items()))
                if self.samples >= next_ckpt:
                    next_ckpt += cfg.checkpoint_every_samples
                    self.save(t0)
                timed_out = max_minutes is not None and time.time() - t0 > 60 * max_minutes
                if stop.requested or timed_out:
                    if stop.requested:
                        self.log(f"{stop.requested} received: checkpoint, validation and model folder, then stop")
                    stopped_early = self.samples < cfg.total_samples
                    break
        finally:
            stop.restore()
            stream.close()
            if bar is not None:
                bar.close()
        self.save(t0)
        result: Dict[str, Any] = {
            "samples": self.samples,
            "steps": self.step,
            "elapsed_s": self.elapsed,
            "finished": not stopped_early,
        }
        if self.dist.main:
            m = self.validate()
            if m:
                result.update(m)
                if not self.history or self.history[-1]["samples"] != self.samples:
                    self.history.append({"samples": self.samples, **m})
                self.log("validation " + " ".join(f"{k} {v:.4f}" for k, v in m.items()))
            folder = self.export()
            result["model_dir"] = str(folder)
            self.log(
                f"{'finished' if not stopped_early else 'paused'} at {self.samples} samples, "
                f"{self.elapsed / 60:.1f} min in all; model folder {folder}"
            )
        self.dist.barrier()
        return result

    # ------------------------------------------------------------------ checkpoints
    def save(self, t0: float) -> None:
        """Write the whole training state (safetensors + JSON, atomic replace); rank 0 only."""
        now = time.time()
        self.elapsed += now - getattr(self, "_last_save", t0)
        self._last_save = now
        if not self.dist.main:
            return
        save_checkpoint(
            self.out,
            model=self.net.state_dict(),
            optimizer=self.opt.state_dict(),
            scheduler=self.sched.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            info={
                "samples": self.samples,
                "step": self.step,
                "elapsed_s": self.elapsed,
                "history": self.history,
                "source_counts": getattr(self, "source_counts", {}),
                "config": self.cfg.to_dict(),
            },
        )

    def _load(self, folder: Path) -> None:
        ck = load_checkpoint(folder, device=self.device)
        self.net.load_state_dict(ck.model)
        self.opt.load_state_dict(ck.optimizer)
        self.sched.load_state_dict(ck.scheduler)
        if self.scaler is not None and ck.scaler:
            self.scaler.load_state_dict(ck.scaler)
        info = ck.info
        self.samples, self.step = int(info["samples"]), int(info["step"])
        self.elapsed = float(info.get("elapsed_s", 0.0))
        self.history = list(info.get("history", []))

    # ------------------------------------------------------------------ export
    def export(self) -> Path:
        """Write ``out_dir/model/`` (model.safetensors, config.json, README.md) for ``Refiner.from_pretrained``."""
        from .export import write_model_folder

        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        folder = write_model_folder(
            self.cfg,
            state,
            self.out / MODEL_DIR,
            samples=self.samples,
            elapsed_s=self.elapsed,
            history=self.history,
            source_counts=self.source_counts,
        )
        (self.out / "history.json").write_text(json.dumps(self.history, indent=1))
        return folder


def train(
    cfg: TrainConfig, *, resume: bool = False, max_minutes: Optional[float] = None, progress: Optional[bool] = None
) -> Dict[str, Any]:
    """Train ``cfg`` (single process, or one torchrun process); returns a summary dict."""
    trainer = Trainer(cfg, resume=resume, progress=progress)
    try:
        return trainer.run(max_minutes=max_minutes)
    finally:
        trainer.dist.close()
