"""Export the refiner network to ONNX: a template graph and a search graph (box only, box + mask).

Layout of an export folder::

    template.onnx      images [B,3,S,S] float32            -> kernel [B,C,k,k]
    search_box.onnx    images [B,3,S,S], kernel [B,C,k,k]  -> scores [B,2,h,w], corners [B,4]
    search_mask.onnx   (with_mask) same inputs             -> scores, corners, mask [B,S,S]
    config.json        the model config (preprocessing contract)
    export.json        manifest: opset, shapes, names, weights fingerprint

``images`` are RGB crops normalised as ``(p/255 - mean)/std`` (float64 maths, cast to float32;
``geometry.normalize`` gives the exact values). The template kernel is an input of the search
graph, so one file serves every sequence. ``S`` is static (256); the batch axis is dynamic.
``corners`` are crop pixels ``(x_tl, y_tl, x_br, y_br)``; ``scores`` are the corner logits the
soft-argmax turns into them (engines redo that step in float32 when the graph runs in bf16).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from .._optional import require
from .._version import __version__
from ..config import ModelConfig
from ..nn.arnet import RefinerNet
from ..nn.heads import mask_probabilities

MANIFEST = "export.json"
CONFIG = "config.json"
FORMAT = "alpharefine-sdk-onnx"
FORMAT_VERSION = 1
# the graphs this library writes for given weights; bumped when they change (same function, new
# graph), so the export cache makes new ones instead of serving the old
GRAPH_REVISION = 2
DEFAULT_OPSET = 17
GRAPH_FILES = {"template": "template.onnx", "box": "search_box.onnx", "mask": "search_mask.onnx"}
PathLike = Union[str, Path]


class TemplateGraph(nn.Module):
    """``images -> kernel``: the template branch of :class:`RefinerNet`."""

    def __init__(self, net: RefinerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return self.net.template_kernel(images)


class SearchGraph(nn.Module):
    """``(images, kernel[, input_corners]) -> (scores, corners[, mask][, iou])``:
    :meth:`RefinerNet.search` plus the logits; nets with an IoU head also take the input box in
    crop pixels and give the predicted IoUs ``[B, 2]`` (refined, input) in [0, 1]."""

    def __init__(self, net: RefinerNet, with_mask: bool) -> None:
        super().__init__()
        self.net = net
        self.with_mask = with_mask

    def forward(self, images: Tensor, kernel: Tensor, input_corners: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        out = self.net.search_outputs(images, kernel, self.with_mask, input_corners)
        outs: Tuple[Tensor, ...] = (out.scores, out.corners)
        if self.with_mask:
            outs += (mask_probabilities(out.mask_logits, images.shape[-1]),)
        if out.iou is not None:
            outs += (torch.sigmoid(out.iou),)
        return outs


def weights_fingerprint(net: nn.Module) -> str:
    """sha256 over the network's state dict (names, shapes and float32 bytes)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        a = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(a.shape)}:{a.dtype};".encode())
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def _export_graph(module: nn.Module, args: Tuple[Tensor, ...], path: Path, inputs, outputs, opset: int) -> None:
    dynamic = {n: {0: "batch"} for n in (*inputs, *outputs)}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        kwargs = dict(
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
        )
        try:  # the TorchScript exporter: fast and needs no extra packages
            torch.onnx.export(module, args, str(path), dynamo=False, **kwargs)
        except TypeError:  # torch without the ``dynamo`` switch
            torch.onnx.export(module, args, str(path), **kwargs)


def check_opset(opset: Any) -> int:
    """``opset`` if the exporter supports it (13..20), else a ValueError."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not 13 <= opset <= 20:
        raise ValueError(f"opset must be an int in 13..20 (default {DEFAULT_OPSET}); got {opset!r}")
    return opset


def export_graphs(
    net: RefinerNet,
    config: ModelConfig,
    out_dir: PathLike,
    *,
    with_mask: bool = True,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> Path:
    """Write the graphs, ``config.json`` and ``export.json`` for ``net`` to ``out_dir``."""
    require("onnx")
    check_opset(opset)
    out = _prepare_dir(Path(out_dir), overwrite)
    S = config.preprocessing.input_size
    p = next(net.parameters())
    if p.dtype != torch.float32:
        raise ValueError(f"export needs the float32 network; this one holds {p.dtype} weights")
    from ._common import centre_corners, graph_names

    # The exporter restores the wrapper's train/eval flag afterwards, recursively: keep every
    # module's own flag, so the caller's network is left exactly as it was.
    modes = {m: m.training for m in net.modules()}
    try:
        net.eval()
        images = torch.zeros(1, 3, S, S, device=p.device)
        with torch.no_grad():
            kernel = net.template_kernel(images)
        _export_graph(
            TemplateGraph(net).eval(), (images,), out / GRAPH_FILES["template"], ["images"], ["kernel"], opset
        )
        variants = ["box", "mask"] if with_mask else ["box"]
        scored = getattr(net, "iou_head", None) is not None
        args: Tuple[Tensor, ...] = (images, kernel)
        if scored:
            args += (torch.from_numpy(centre_corners(1, S)).to(p.device),)
        for v in variants:
            _export_graph(
                SearchGraph(net, v == "mask").eval(),
                args,
                out / GRAPH_FILES[v],
                ["images", "kernel", "input_corners"][: len(args)],
                graph_names(v == "mask", scored),
                opset,
            )
    finally:
        for m, training in modes.items():
            m.training = training
    config.save(out / CONFIG)
    manifest: Dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "opset": opset,
        "architecture": config.architecture,
        "input_size": S,
        "kernel_shape": list(kernel.shape[1:]),
        "score_shape": [2, S // net.corner_head.stride, S // net.corner_head.stride],
        "stride": int(net.corner_head.stride),
        "corner_offset": float(net.corner_head.offset),
        "graphs": {v: GRAPH_FILES[v] for v in ["template", *variants]},
        "iou": scored,
        "inputs": "images: float32 [B,3,S,S] RGB, (p/255 - mean)/std; kernel: float32 from template.onnx",
        "mean": list(config.preprocessing.mean),
        "std": list(config.preprocessing.std),
        "weights_sha256": weights_fingerprint(net),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _prepare_dir(out: Path, overwrite: bool) -> Path:
    from .._outdir import check_output_dir

    present = check_output_dir(
        out,
        {*GRAPH_FILES.values(), MANIFEST, CONFIG},
        overwrite,
        "pass overwrite=True (--overwrite) to replace an earlier export",
    )
    for n in present:
        (out / n).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_manifest(
    onnx_dir: PathLike, config: ModelConfig, net: Optional[nn.Module] = None, *, weights_sha256: Optional[str] = None
) -> Dict[str, Any]:
    """The manifest of an export folder, checked against ``config`` (and the weights of ``net``, or
    the fingerprint ``weights_sha256`` of :func:`weights_fingerprint`, if given)."""
    d = Path(onnx_dir)
    f = d / MANIFEST
    if not f.is_file():
        raise FileNotFoundError(
            f"onnx_dir={str(d)!r} has no {MANIFEST}; point it at a folder written by "
            "`alpharefine-sdk export WEIGHTS OUT --format onnx` or Refiner.export_onnx()"
        )
    try:
        m = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{f} is not valid JSON ({e}); re-export the model") from None
    if (
        m.get("format") != FORMAT
        or not isinstance(m.get("format_version"), int)
        or m["format_version"] > FORMAT_VERSION
    ):
        raise ValueError(f"{f} is not an alpharefine-sdk ONNX export this version reads; re-export the model")
    if m.get("architecture") != config.architecture or m.get("input_size") != config.preprocessing.input_size:
        raise ValueError(
            f"onnx_dir holds a {m.get('architecture')} export for {m.get('input_size')}px crops but the loaded "
            f"weights are {config.architecture} at {config.preprocessing.input_size}px; export these weights"
        )
    if net is not None and weights_sha256 is None:
        weights_sha256 = weights_fingerprint(net)
    if weights_sha256 is not None and m.get("weights_sha256") != weights_sha256:
        raise ValueError(
            f"onnx_dir={str(d)!r} was exported from other weights than the ones loaded; "
            "pass the same source to from_pretrained, or re-export"
        )
    for v, name in m.get("graphs", {}).items():
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name} is missing from the export ({v} graph); re-export the model")
    if "template" not in m.get("graphs", {}) or "box" not in m.get("graphs", {}):
        raise ValueError(f"{f} lists no template/box graphs; re-export the model")
    return m


def verify_export(out_dir: PathLike, net: RefinerNet, config: ModelConfig, *, seed: int = 0) -> Dict[str, float]:
    """Run the exported graphs with ONNX Runtime on a synthetic crop pair and compare with ``net``.

    Returns the largest differences (logits relative to their range, corners in pixels, mask);
    raises RuntimeError beyond 1e-4 / 2e-3 px / 1e-4.
    """
    from . import _common as C
    from .onnxruntime_engine import OnnxRuntimeEngine

    rng = np.random.default_rng(seed)
    S = config.preprocessing.input_size
    crops = rng.integers(0, 256, size=(2, S, S, 3), dtype=np.uint8)
    eng = OnnxRuntimeEngine(net, config, onnx_dir=out_dir)
    kernel = eng.template(crops[:1])
    x = torch.from_numpy(C.network_input(crops, config)).to(next(net.parameters()).device)
    with torch.no_grad():
        ref_k = net.template_kernel(x[:1])
        ref = SearchGraph(net, eng.has_mask)(x[1:], ref_k)
    outs = eng.search_outputs(crops[1:], kernel, with_mask=eng.has_mask)
    ref_s = ref[0].cpu().numpy()
    err = {
        "scores_rel": float(np.abs(outs[0] - ref_s).max() / max(1.0, float(np.abs(ref_s).max()))),
        "corners_px": float(
            np.abs(C.corners_from_scores(outs[0], eng.stride, eng.corner_offset) - ref[1].cpu().numpy()).max()
        ),
    }
    if eng.has_mask:
        err["mask"] = float(np.abs(outs[2] - ref[2].cpu().numpy()).max())
    if err["scores_rel"] > 1e-4 or err["corners_px"] > 2e-3 or err.get("mask", 0.0) > 1e-4:
        raise RuntimeError(f"the ONNX export does not match the PyTorch network: {err}")
    return err


def export_onnx(
    refiner: Any,
    out_dir: PathLike,
    *,
    with_mask: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    verify: bool = True,
) -> Path:
    """Export ``refiner``'s network to ``out_dir`` (see the module docstring for the layout).

    ``with_mask`` adds the box + mask search graph; ``verify`` checks the graphs against the
    PyTorch network with ONNX Runtime when it is installed. Returns the folder.
    """
    net = getattr(refiner, "net", None)
    config = getattr(refiner, "config", None)
    if not isinstance(net, RefinerNet) or not isinstance(config, ModelConfig):
        raise ValueError("export_onnx needs a Refiner built with from_pretrained (one that holds its network)")
    out = export_graphs(net, config, out_dir, with_mask=with_mask, opset=opset, overwrite=overwrite)
    onnx = require("onnx")
    for name in json.loads((out / MANIFEST).read_text())["graphs"].values():
        onnx.checker.check_model(str(out / name))
    if verify:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return out
        verify_export(out, net, config)
    return out
