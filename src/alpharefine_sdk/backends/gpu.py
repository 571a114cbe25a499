"""The fast inference path: ``Refiner.optimize(...)`` swaps in a :class:`FastTorchEngine`.

What it does (each step opt-out by keyword): batch-norm folding, the fused Triton correlation in
the neck, half precision (weights and activations in fp16/bf16; soft-argmax, corners and the
coordinate maths stay fp32), channels-last, and on CUDA one captured CUDA graph per batch size
(and mask flag) for the fixed ``S x S`` input, fed by one pinned uint8 crop upload per frame and
normalised on the device. The template kernel of the last refined target set stays in the graph's
static buffer and is copied again only when it changes (a new ``initialize`` or another target).
The default engines stay exact fp32; see ``docs/gpu.md`` for tolerances.
"""

from __future__ import annotations

import copy
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..geometry.normalize import normalization_table
from ..nn.arnet import RefinerNet
from ..nn.fusion import CorrelationNeck
from .fold import fold_batch_norms
from .triton_corr import FusedCorrelationNeck

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceNormalizer(nn.Module):
    """uint8 ``[B, S, S, 3]`` crops -> normalised ``[B, 3, S, S]`` on the crops' device.

    The same float64-exact lookup table as :func:`~alpharefine_sdk.geometry.normalize.normalize_crops`,
    uploaded once; the result is a channels-last view of the gathered values (free when the network
    runs channels-last).
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        dtype: torch.dtype = torch.float32,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        lut = torch.from_numpy(normalization_table(mean, std).reshape(-1).copy())
        self.register_buffer("lut", lut.to(dtype), persistent=False)
        self.register_buffer("offsets", torch.arange(3), persistent=False)
        self.channels_last = channels_last

    def forward(self, crops: Tensor) -> Tensor:
        x = self.lut.take(crops.long() * 3 + self.offsets).permute(0, 3, 1, 2)
        return x if self.channels_last else x.contiguous()


@dataclass
class _Inputs:
    """Static inputs of the graphs for one batch size, their pinned host mirror, and which kernel they hold."""

    u8: Tensor
    kernel: Tensor
    host_u8: Tensor
    kernel_src: Any = None  # weakref to the kernel tensor last copied in
    kernel_version: Optional[int] = None

    def holds(self, kernels: Tensor) -> bool:
        """True when the static buffer already holds ``kernels`` (same tensor, not modified since)."""
        if kernels.data_ptr() == self.kernel.data_ptr():
            return True
        src = self.kernel_src() if self.kernel_src is not None else None
        return src is kernels and _version(kernels) == self.kernel_version

    def load_kernel(self, kernels: Tensor) -> None:
        if not self.holds(kernels):
            self.kernel.copy_(kernels)
            self.kernel_src, self.kernel_version = weakref.ref(kernels), _version(kernels)


def _version(t: Tensor) -> Optional[int]:
    """In-place version counter; ``None`` for inference tensors (they have none, and only
    inference-mode code, which never edits a template in place, can modify them)."""
    return None if t.is_inference() else t._version


@dataclass
class _Graph:
    """One captured search step: its static inputs and outputs and pinned host outputs."""

    graph: Any
    inputs: _Inputs
    corners: Tensor
    mask: Optional[Tensor]
    host_corners: Tensor
    host_mask: Optional[Tensor]


@dataclass
class FastOptions:
    """Options :func:`optimize` asked for, and what is in effect on this device (with reasons)."""

    precision: str = "fp16"
    channels_last: bool = True
    fold_bn: bool = True
    fused_correlation: bool = True
    cuda_graph: bool = True
    compile: bool = False
    skipped: Dict[str, str] = field(default_factory=dict)


class FastTorchEngine:
    """Engine interface (``template``, ``concat``, ``search``) over an optimised copy of the network."""

    name = "torch-fast"

    def __init__(self, net: RefinerNet, config: ModelConfig, *, device: Any = None, options: FastOptions) -> None:
        self.device = torch.device(device) if device is not None else next(net.parameters()).device
        self.config = config
        self.options = opts = options
        self.net = net  # as loaded: what save_pretrained and export_onnx write
        if opts.precision == "fp16" and self.device.type != "cuda":
            self._skip("precision", "fp16 needs CUDA; running fp32 (pass precision='bf16' for bf16 on CPU)")
            opts.precision = "fp32"
        self.precision = opts.precision
        self.dtype = _DTYPES[opts.precision]
        self.memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format
        self.run_net = self._build(net)  # the optimised copy that runs
        pre = config.preprocessing
        self.size = pre.input_size
        self.normalize = DeviceNormalizer(pre.mean, pre.std, self.dtype, opts.channels_last).to(self.device)
        self._step: Callable[..., Tuple[Tensor, Optional[Tensor]]] = self._forward
        if opts.compile:
            self._step = torch.compile(
                self._forward,
                mode="reduce-overhead" if self.device.type == "cuda" and not opts.cuda_graph else "default",
                dynamic=False,
            )
        self._graphs: Dict[Tuple[int, bool], _Graph] = {}
        self._inputs: Dict[int, _Inputs] = {}
        self._pool: Any = None
        if opts.cuda_graph and self.device.type != "cuda":
            self._skip("cuda_graph", f"CUDA graphs need a CUDA device; running eager on {self.device}")

    # ------------------------------------------------------------------ build
    def _skip(self, option: str, reason: str) -> None:
        self.options.skipped[option] = reason
        log.info("optimize(): %s skipped: %s", option, reason)

    def _build(self, net: RefinerNet) -> RefinerNet:
        opts = self.options
        fast = copy.deepcopy(net).eval()
        if opts.fused_correlation:
            if isinstance(fast.neck, CorrelationNeck):
                fast.neck = FusedCorrelationNeck(fast.neck)
                if opts.compile:  # keep the Triton launch out of the traced graph
                    fast.neck.forward = torch.compiler.disable(fast.neck.forward)
            else:
                self._skip("fused_correlation", f"neck {type(fast.neck).__name__} is not a CorrelationNeck")
        if opts.fold_bn:
            folded, left = fold_batch_norms(fast)
            log.info("optimize(): folded %d batch norms, %d left unfolded", folded, left)
        fast = fast.to(self.device, self.dtype).to(memory_format=self.memory_format)
        for p in fast.parameters():
            p.requires_grad_(False)
        return fast

    # ------------------------------------------------------------------ network step
    def _forward(self, u8: Tensor, kernel: Tensor, with_mask: bool) -> Tuple[Tensor, Optional[Tensor]]:
        corners, mask = self.run_net.search(self.normalize(u8), kernel, with_mask)
        return corners.float(), None if mask is None else mask.float()

    def _upload(self, crops: np.ndarray) -> Tensor:
        crops = _check_crops(crops, self.size)
        t = torch.from_numpy(crops)
        if self.device.type == "cuda":
            t = t.pin_memory().to(self.device, non_blocking=True)
        return t

    def adopt(self, kernel: Tensor) -> Tensor:
        """A template kernel from another engine (a tensor, or a numpy array from an ONNX engine) in
        this engine's device, dtype and layout."""
        if isinstance(kernel, np.ndarray):
            kernel = torch.from_numpy(kernel)
        return kernel.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)

    # ------------------------------------------------------------------ engine interface
    def template(self, crops: np.ndarray) -> Tensor:
        """Template kernels ``[B, C, 8, 8]`` (device, engine dtype) for uint8 crops ``[B, S, S, 3]``."""
        with torch.inference_mode():
            k = self.run_net.template_kernel(self.normalize(self._upload(crops)))
            return k.contiguous(memory_format=self.memory_format)

    def concat(self, kernels: Sequence[Tensor]) -> Tensor:
        if len(kernels) == 1:
            return kernels[0]
        with torch.inference_mode():
            out = torch.cat([self.adopt(k) for k in kernels], dim=0)
            inputs = self._inputs.get(len(kernels))
            if inputs is None:
                return out
            inputs.kernel.copy_(out)  # straight into the static buffer the graphs read
            inputs.kernel_src = None
            return inputs.kernel

    def search(
        self, crops: np.ndarray, kernels: Tensor, with_mask: bool = False
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Corners ``[B, 4]`` float32 and masks ``[B, S, S]`` float32 (or ``None``), as numpy."""
        crops = _check_crops(crops, self.size)
        if kernels.shape[0] != crops.shape[0]:
            raise ValueError(f"got {crops.shape[0]} crops but {kernels.shape[0]} template kernels; pass one per crop")
        if self.options.cuda_graph and self.device.type == "cuda" and "cuda_graph" not in self.options.skipped:
            g = self._graph(crops.shape[0], with_mask, kernels)
            if g is not None:
                return self._replay(g, crops, kernels)
        with torch.inference_mode():
            corners, mask = self._step(self._upload(crops), self.adopt(kernels), with_mask)
            return corners.cpu().numpy(), None if mask is None else mask.cpu().numpy()

    # ------------------------------------------------------------------ CUDA graphs
    def _graph(self, n: int, with_mask: bool, kernels: Tensor) -> Optional[_Graph]:
        key = (n, with_mask)
        if key in self._graphs:
            return self._graphs[key]
        try:
            g = self._capture(n, with_mask, kernels)
        except Exception as e:  # capture is an optimisation: keep serving eagerly
            self._skip("cuda_graph", f"capture failed for batch {n} ({e}); running eager")
            log.warning("CUDA graph capture failed (%s); the fast engine runs eager", e)
            return None
        self._graphs[key] = g
        return g

    def _capture(self, n: int, with_mask: bool, kernels: Tensor) -> _Graph:
        inputs = self._inputs.get(n)
        if inputs is None:
            shape = (n, self.size, self.size, 3)
            inputs = _Inputs(
                torch.zeros(shape, dtype=torch.uint8, device=self.device),
                torch.zeros_like(self.adopt(kernels)),
                torch.empty(shape, dtype=torch.uint8, pin_memory=True),
            )
            self._inputs[n] = inputs
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(3):  # Triton/cuDNN/compile choices happen here, outside the capture
                    self._step(inputs.u8, inputs.kernel, with_mask)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                corners, mask = self._step(inputs.u8, inputs.kernel, with_mask)
        host_mask = torch.empty(mask.shape, dtype=torch.float32, pin_memory=True) if mask is not None else None
        return _Graph(
            graph, inputs, corners, mask, torch.empty(corners.shape, dtype=torch.float32, pin_memory=True), host_mask
        )

    def _replay(self, g: _Graph, crops: np.ndarray, kernels: Tensor) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        stream = torch.cuda.current_stream(self.device)
        with torch.inference_mode():
            np.copyto(g.inputs.host_u8.numpy(), crops)
            g.inputs.u8.copy_(g.inputs.host_u8, non_blocking=True)  # the one upload per frame
            g.inputs.load_kernel(kernels)  # no-op while the same template is refined
            g.graph.replay()
            g.host_corners.copy_(g.corners, non_blocking=True)
            if g.mask is not None:
                g.host_mask.copy_(g.mask, non_blocking=True)
            stream.synchronize()  # the one host sync: results are needed on the host
        corners = g.host_corners.numpy().copy()
        return corners, None if g.host_mask is None else g.host_mask.numpy().copy()


def _check_crops(crops: Any, size: int) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
        raise ValueError(f"crops must be uint8 [B, {size}, {size}, 3] RGB; got {crops.dtype} {crops.shape}")
    return np.ascontiguousarray(crops)


def optimize(
    refiner: Any,
    *,
    precision: str = "fp16",
    channels_last: bool = True,
    fold_bn: bool = True,
    fused_correlation: bool = True,
    cuda_graph: bool = True,
    compile: bool = False,
) -> Any:
    """Swap ``refiner``'s engine for a :class:`FastTorchEngine`; returns the same refiner.

    Args:
        precision: "fp16" (default; CUDA only, fp32 on CPU with a logged reason), "bf16" or "fp32".
        channels_last, fold_bn, fused_correlation, cuda_graph: the optimisations, each opt-out.
            Those a device cannot run are skipped with a logged reason (``refiner.engine.options.skipped``).
        compile: also ``torch.compile`` the search step (needs a working compiler toolchain).

    Refiners cloned from ``refiner`` afterwards share the fast engine (``refine_many`` needs that);
    clones made before keep the exact engine. A template already computed is carried over.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    for name, value in (
        ("channels_last", channels_last),
        ("fold_bn", fold_bn),
        ("fused_correlation", fused_correlation),
        ("cuda_graph", cuda_graph),
        ("compile", compile),
    ):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False; got {value!r}")
    engine = getattr(refiner, "engine", None)
    net = getattr(engine, "net", None)
    if not isinstance(net, RefinerNet):
        raise ValueError(
            f"optimize() needs the torch backend; this refiner runs on "
            f"{getattr(engine, 'name', type(engine).__name__)!r}: build it with backend='torch'"
        )
    opts = FastOptions(precision, channels_last, fold_bn, fused_correlation, cuda_graph, compile)
    fast = FastTorchEngine(net, refiner.config, device=getattr(engine, "device", None), options=opts)
    if refiner.is_initialized:
        refiner._kernel = fast.adopt(refiner._kernel)
    refiner.engine = fast
    return refiner
