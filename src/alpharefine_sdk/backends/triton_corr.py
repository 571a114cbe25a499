"""Fused pixel-wise correlation: correlation -> 1x1 conv (BN folded) -> ReLU [-> the rest of post_corr].

One Triton program takes a block of search positions of one target, correlates them with that
target's 64 template cells (dot products over the 256 channels, fp32 accumulation), then applies
the post-correlation 1x1 layers (conv with its batch norm folded in, ReLU) while the block is still
in registers, and writes only the result. The reference is the same maths in plain torch ops
(:func:`reference_fused_correlation`); :func:`fused_correlation` picks the Triton kernel for CUDA
tensors and the reference elsewhere.

Numerics (checked by the tests): fp32 with ``input_precision="ieee"`` matches the reference to
about 1e-5 relative; fp16/bf16 inputs accumulate in fp32 and round each layer's output to the input
dtype like the torch ops do, agreeing to about 1e-2 (fp16) / 5e-2 (bf16) relative to the largest
activation.

Triton is imported lazily, on the first kernel launch. Under ``TRITON_INTERPRET=1`` (set before
``triton`` is imported) the kernel also runs on CPU tensors, slowly: that is how CI checks its logic.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.correlation import pixelwise_correlation
from .fold import fold_conv_bn

log = logging.getLogger(__name__)

IMPLS = ("auto", "triton", "torch")


# --------------------------------------------------------------------------- batch-norm folding
@dataclass
class FoldedLayers:
    """The 1x1 conv-BN-ReLU layers of a post-correlation block, folded: ``weights[i]`` is ``[out, in]``."""

    weights: List[Tensor]
    biases: List[Tensor]

    @property
    def depth(self) -> int:
        return len(self.weights)


def fold_post_corr(post_corr: nn.Sequential) -> FoldedLayers:
    """Fold ``post_corr`` (a Sequential of (1x1 Conv2d, BatchNorm2d, ReLU) triples) into matrices."""
    mods = list(post_corr)
    if not mods or len(mods) % 3:
        raise ValueError(f"post_corr must be (Conv2d, BatchNorm2d, ReLU) triples; got {len(mods)} modules")
    ws, bs = [], []
    for i in range(0, len(mods), 3):
        conv, bn, act = mods[i : i + 3]
        if not (
            isinstance(conv, nn.Conv2d)
            and conv.kernel_size == (1, 1)
            and conv.groups == 1
            and isinstance(bn, nn.BatchNorm2d)
            and isinstance(act, nn.ReLU)
        ):
            raise ValueError(f"post_corr[{i}:{i + 3}] is not a 1x1 Conv2d, BatchNorm2d, ReLU triple: {mods[i : i + 3]}")
        w, b = fold_conv_bn(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(), bn)
        ws.append(w[:, :, 0, 0].contiguous())
        bs.append(b.contiguous())
    return FoldedLayers(ws, bs)


# --------------------------------------------------------------------------- reference
def reference_fused_correlation(
    kernel: Tensor, search: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]
) -> Tensor:
    """Torch reference: correlation, then ``relu(W x + b)`` per layer. ``[B, C, kh, kw]`` x ``[B, C, H, W]`` -> ``[B, O, H, W]``."""
    x = pixelwise_correlation(kernel, search)
    for w, b in zip(weights, biases):
        x = F.relu(F.conv2d(x, w[:, :, None, None].to(x.dtype), b.to(x.dtype)))
    return x


# --------------------------------------------------------------------------- Triton kernel
def triton_available() -> bool:
    """True when ``triton`` imports (it ships with CUDA builds of PyTorch)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def interpreter_enabled() -> bool:
    """True when ``TRITON_INTERPRET=1``: Triton kernels then run on CPU tensors (tests only)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@lru_cache(maxsize=None)
def _kernel() -> Any:
    """Build (once) the jitted kernel; imports triton here so the package import stays cheap."""
    from .._optional import require

    triton = require("triton")
    tl = require("triton.language")
    # Jitted functions resolve names through this module's globals (the interpreter ignores
    # closures), so the helpers and ``tl`` are published there as they are defined.
    globals()["tl"] = tl

    @triton.jit
    def dense_relu(
        x,
        w_ptr,
        b_ptr,
        n_in,
        n_out,
        BLOCK_IN: tl.constexpr,
        BLOCK_OUT: tl.constexpr,
        PREC: tl.constexpr,
        DOT_F32: tl.constexpr,
    ):
        # relu(x @ W^T + b) with W [n_out, n_in] row-major; padded rows/cols are zero.
        ri = tl.arange(0, BLOCK_IN)
        ro = tl.arange(0, BLOCK_OUT)
        wt = tl.load(
            w_ptr + ro[None, :] * n_in + ri[:, None], mask=(ri[:, None] < n_in) & (ro[None, :] < n_out), other=0.0
        )
        if DOT_F32:
            y = tl.dot(x.to(tl.float32), wt.to(tl.float32), input_precision=PREC)
        else:
            y = tl.dot(x, wt.to(x.dtype), input_precision=PREC)
        bias = tl.load(b_ptr + ro, mask=ro < n_out, other=0.0).to(tl.float32)
        return tl.maximum(y + bias[None, :], 0.0)

    globals()["dense_relu"] = dense_relu

    @triton.jit
    def _store(o_ptr, y, b, ph, pw, pmask, n_out, o_sb, o_sc, o_sh, o_sw, BLOCK_OUT: tl.constexpr):
        ro = tl.arange(0, BLOCK_OUT)
        ptrs = o_ptr + b * o_sb + ph[:, None] * o_sh + pw[:, None] * o_sw + ro[None, :] * o_sc
        tl.store(ptrs, y.to(o_ptr.dtype.element_ty), mask=pmask[:, None] & (ro[None, :] < n_out))

    globals()["_store"] = _store

    @triton.jit
    def fused_corr_kernel(
        s_ptr,
        k_ptr,
        o_ptr,
        w1_ptr,
        b1_ptr,
        w2_ptr,
        b2_ptr,
        w3_ptr,
        b3_ptr,
        C,
        P,
        W,
        K,
        O1,
        O2,
        O3,
        s_sb,
        s_sc,
        s_sh,
        s_sw,
        k_sb,
        k_sc,
        k_sk,
        o_sb,
        o_sc,
        o_sh,
        o_sw,
        DEPTH: tl.constexpr,
        BLOCK_P: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_K: tl.constexpr,
        BLOCK_O1: tl.constexpr,
        BLOCK_O2: tl.constexpr,
        BLOCK_O3: tl.constexpr,
        PREC: tl.constexpr,
        DOT_F32: tl.constexpr,
    ):
        b = tl.program_id(0)
        rp = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
        pmask = rp < P
        ph = rp // W
        pw = rp % W
        rk = tl.arange(0, BLOCK_K)
        kmask = rk < K
        s_base = s_ptr + b * s_sb + ph[:, None] * s_sh + pw[:, None] * s_sw
        k_base = k_ptr + b * k_sb + rk[None, :] * k_sk
        acc = tl.zeros((BLOCK_P, BLOCK_K), dtype=tl.float32)
        for c0 in range(0, C, BLOCK_C):
            rc = c0 + tl.arange(0, BLOCK_C)
            cmask = rc < C
            s = tl.load(s_base + rc[None, :] * s_sc, mask=pmask[:, None] & cmask[None, :], other=0.0)
            kk = tl.load(k_base + rc[:, None] * k_sc, mask=cmask[:, None] & kmask[None, :], other=0.0)
            if DOT_F32:
                acc += tl.dot(s.to(tl.float32), kk.to(tl.float32), input_precision=PREC)
            else:
                acc += tl.dot(s, kk, input_precision=PREC)
        dt = s_ptr.dtype.element_ty
        h = dense_relu(acc.to(dt), w1_ptr, b1_ptr, K, O1, BLOCK_K, BLOCK_O1, PREC, DOT_F32)
        if DEPTH >= 2:
            h2 = dense_relu(h.to(dt), w2_ptr, b2_ptr, O1, O2, BLOCK_O1, BLOCK_O2, PREC, DOT_F32)
            if DEPTH >= 3:
                h3 = dense_relu(h2.to(dt), w3_ptr, b3_ptr, O2, O3, BLOCK_O2, BLOCK_O3, PREC, DOT_F32)
                _store(o_ptr, h3, b, ph, pw, pmask, O3, o_sb, o_sc, o_sh, o_sw, BLOCK_O3)
            else:
                _store(o_ptr, h2, b, ph, pw, pmask, O2, o_sb, o_sc, o_sh, o_sw, BLOCK_O2)
        else:
            _store(o_ptr, h, b, ph, pw, pmask, O1, o_sb, o_sc, o_sh, o_sw, BLOCK_O1)

    return triton, fused_corr_kernel


def _block(n: int) -> int:
    """Power-of-two tile side, at least 16 (the minimum ``tl.dot`` accepts)."""
    return max(16, 1 << (int(n) - 1).bit_length())


def triton_fused_correlation(
    kernel: Tensor,
    search: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    *,
    out: Optional[Tensor] = None,
    allow_tf32: bool = False,
    block_p: int = 64,
) -> Tensor:
    """The Triton kernel (1 to 3 fused layers). ``out`` may be given (any strides, e.g. channels-last)."""
    depth = len(weights)
    if not 1 <= depth <= 3:
        raise ValueError(f"the Triton kernel fuses 1 to 3 layers; got {depth}")
    if not (search.is_cuda or interpreter_enabled()):
        raise ValueError(
            "the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1 set before triton is imported); "
            "use impl='torch' on CPU"
        )
    triton, fn = _kernel()
    b, c, h, w = search.shape
    k = kernel.reshape(b, c, -1)  # a view for contiguous and channels-last kernels
    n_k = k.shape[2]
    outs = [wt.shape[0] for wt in weights]
    if out is None:  # same memory format as the search map, so the next layers need no copy
        cl = search.is_contiguous(memory_format=torch.channels_last) and not search.is_contiguous()
        out = torch.empty(
            (b, outs[-1], h, w),
            device=search.device,
            dtype=search.dtype,
            memory_format=torch.channels_last if cl else torch.contiguous_format,
        )
    ws = [wt.to(search.dtype).contiguous() for wt in weights]
    bs = [bi.contiguous() for bi in biases]
    ws += [ws[-1]] * (3 - depth)
    bs += [bs[-1]] * (3 - depth)
    pad = outs + [outs[-1]] * (3 - depth)
    prec = "tf32" if (allow_tf32 and search.dtype == torch.float32) else "ieee"
    # Triton's interpreter multiplies bf16 tiles wrongly; there the tiles are widened to fp32 first
    # (exact for bf16 values; the products still accumulate in fp32 as on tensor cores).
    dot_f32 = search.dtype == torch.bfloat16 and not search.is_cuda
    block_c = 64 if search.dtype == torch.float32 else 128
    grid = (b, triton.cdiv(h * w, block_p))
    fn[grid](
        search,
        k,
        out,
        ws[0],
        bs[0],
        ws[1],
        bs[1],
        ws[2],
        bs[2],
        c,
        h * w,
        w,
        n_k,
        pad[0],
        pad[1],
        pad[2],
        *search.stride(),
        *k.stride(),
        *out.stride(),
        DEPTH=depth,
        BLOCK_P=block_p,
        BLOCK_C=min(block_c, _block(c)),
        BLOCK_K=_block(n_k),
        BLOCK_O1=_block(pad[0]),
        BLOCK_O2=_block(pad[1]),
        BLOCK_O3=_block(pad[2]),
        PREC=prec,
        DOT_F32=dot_f32,
    )
    return out


# --------------------------------------------------------------------------- dispatch
_TRITON_BROKEN: List[str] = []


def _check(kernel: Tensor, search: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor]) -> None:
    if kernel.dim() != 4 or search.dim() != 4:
        raise ValueError(
            f"kernel must be [B, C, kh, kw] and search [B, C, H, W]; got kernel {tuple(kernel.shape)}, "
            f"search {tuple(search.shape)}"
        )
    if kernel.shape[:2] != search.shape[:2]:
        raise ValueError(
            f"kernel {tuple(kernel.shape)} and search {tuple(search.shape)} must agree in batch and channels"
        )
    if kernel.device != search.device or kernel.dtype != search.dtype:
        raise ValueError(
            f"kernel ({kernel.dtype}, {kernel.device}) and search ({search.dtype}, {search.device}) "
            "must share dtype and device"
        )
    if not weights or len(weights) != len(biases):
        raise ValueError("weights and biases must be non-empty lists of equal length (one pair per fused layer)")
    n_in = kernel.shape[2] * kernel.shape[3]
    for i, (wt, bi) in enumerate(zip(weights, biases)):
        if wt.dim() != 2 or wt.shape[1] != n_in or bi.shape != (wt.shape[0],):
            raise ValueError(
                f"weights[{i}] must be [out, {n_in}] with biases[{i}] [out]; "
                f"got {tuple(wt.shape)} and {tuple(bi.shape)}"
            )
        n_in = wt.shape[0]


def fused_correlation(
    kernel: Tensor,
    search: Tensor,
    weights: Sequence[Tensor],
    biases: Sequence[Tensor],
    *,
    impl: str = "auto",
    out: Optional[Tensor] = None,
    allow_tf32: bool = False,
) -> Tensor:
    """Correlation of per-target template kernels with search features, then fused 1x1 layers.

    Args:
        kernel: ``[B, C, kh, kw]`` template kernels, one per target (batch entries pair by index).
        search: ``[B, C, H, W]`` search features (contiguous or channels-last).
        weights, biases: folded 1x1 layers (``[out, in]``, ``[out]``), see :func:`fold_post_corr`;
            the first layer's ``in`` is ``kh*kw``. Up to 3 run inside the Triton kernel.
        impl: "auto" (Triton for CUDA tensors when it imports, else torch), "triton" or "torch".
        out: optional output for the Triton path.

    Returns:
        ``[B, out_last, H, W]`` in the dtype of ``search``.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}; got {impl!r}")
    _check(kernel, search, weights, biases)
    if impl == "auto":
        use = search.is_cuda and len(weights) <= 3 and not _TRITON_BROKEN and triton_available()
        if not use:
            return reference_fused_correlation(kernel, search, weights, biases)
        try:
            return triton_fused_correlation(kernel, search, weights, biases, out=out, allow_tf32=allow_tf32)
        except Exception as e:  # compile/launch failure: keep working on the torch ops
            _TRITON_BROKEN.append(repr(e))
            log.warning("fused Triton correlation failed (%s); falling back to the torch ops", e)
            return reference_fused_correlation(kernel, search, weights, biases)
    if impl == "triton":
        return triton_fused_correlation(kernel, search, weights, biases, out=out, allow_tf32=allow_tf32)
    return reference_fused_correlation(kernel, search, weights, biases)


class FusedCorrelationNeck(nn.Module):
    """Drop-in for :class:`~alpharefine_sdk.nn.fusion.CorrelationNeck` using :func:`fused_correlation`.

    The first ``depth`` conv-BN-ReLU layers of ``post_corr`` are folded and fused; any remaining
    layers and the channel attention run as torch modules. Built from (and leaving untouched) a
    loaded neck.
    """

    def __init__(self, neck: nn.Module, depth: int = 3, impl: str = "auto", allow_tf32: bool = False) -> None:
        super().__init__()
        folded = fold_post_corr(neck.post_corr)
        if not 1 <= depth <= folded.depth:
            raise ValueError(f"depth must be between 1 and {folded.depth} (layers in post_corr); got {depth}")
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}; got {impl!r}")
        self.depth, self.impl, self.allow_tf32 = depth, impl, allow_tf32
        for i in range(depth):
            self.register_buffer(f"w{i}", folded.weights[i].clone())
            self.register_buffer(f"b{i}", folded.biases[i].clone())
        self.rest = nn.Sequential(*list(neck.post_corr)[3 * depth :])
        self.channel_attention = neck.channel_attention

    def layers(self) -> Tuple[List[Tensor], List[Tensor]]:
        return [getattr(self, f"w{i}") for i in range(self.depth)], [getattr(self, f"b{i}") for i in range(self.depth)]

    def forward(self, kernel: Tensor, search: Tensor) -> Tensor:
        ws, bs = self.layers()
        x = fused_correlation(kernel, search, ws, bs, impl=self.impl, allow_tf32=self.allow_tf32)
        return self.channel_attention(self.rest(x))
