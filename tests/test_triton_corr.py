"""The fused correlation op: BN folding, the torch reference and dispatch (CPU), the Triton kernel
under Triton's interpreter (a subprocess with ``TRITON_INTERPRET=1``, so the flag never leaks into
this process), an ahead-of-time compile of the kernel for sm_90 (no GPU needed), and CUDA checks.

Tolerances (max abs error / max abs of the fp32 reference): fp32 1e-5, fp16 5e-3, bf16 3e-2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import randomize_batchnorm
from torch import nn

from alpharefine_sdk.backends import triton_corr as tc
from alpharefine_sdk.nn.correlation import pixelwise_correlation
from alpharefine_sdk.nn.fusion import CorrelationNeck

TOL = {"float32": 1e-5, "float16": 5e-3, "bfloat16": 3e-2}
HAS_TRITON = tc.triton_available()
CUDA = torch.cuda.is_available()
_ENV_AT_IMPORT = os.environ.get("TRITON_INTERPRET")


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.float() - ref.float()).abs().max() / ref.float().abs().max())


def _random_neck(seed: int = 0) -> CorrelationNeck:
    torch.manual_seed(seed)
    return randomize_batchnorm(CorrelationNeck(64, 128, 64).eval(), mean_std=0.5, bias_std=0.2)


# --------------------------------------------------------------------------- CPU: folding and reference
def test_fold_post_corr_matches_the_modules():
    neck = _random_neck()
    k, s = torch.randn(2, 256, 8, 8), torch.randn(2, 256, 16, 16)
    folded = tc.fold_post_corr(neck.post_corr)
    assert folded.depth == 3 and [tuple(w.shape) for w in folded.weights] == [(128, 64), (128, 128), (64, 128)]
    with torch.no_grad():
        ref = neck.post_corr(pixelwise_correlation(k, s))
        out = tc.reference_fused_correlation(k, s, folded.weights, folded.biases)
    assert _rel(out, ref) < TOL["float32"]


def test_fused_neck_on_the_parity_network_matches_its_neck(ar34, golden):
    """Real weights and real features: the search and template crops of a parity case."""
    import cv2

    net = ar34.net
    buf, off = golden["search_crop_png"], golden["search_crop_png_offsets"]
    crop = cv2.imdecode(buf[off[0] : off[1]], cv2.IMREAD_UNCHANGED)
    from alpharefine_sdk.geometry.normalize import normalize_crops

    pre = ar34.config.preprocessing
    x = torch.from_numpy(normalize_crops(crop[None], pre.mean, pre.std))
    with torch.no_grad():
        feat = net.feature_extractor(x, ("layer3",))["layer3"]
        kernel = net.template_kernel(x)
        ref = net.neck(kernel, feat)
        for depth in (1, 2, 3):
            fused = tc.FusedCorrelationNeck(net.neck, depth=depth, impl="torch")
            assert len(fused.rest) == 3 * (3 - depth)
            assert _rel(fused(kernel, feat), ref) < TOL["float32"]
    assert isinstance(net.neck.post_corr[1], nn.BatchNorm2d), "the source neck must be left untouched"


def test_auto_dispatch_on_cpu_is_the_reference():
    neck = _random_neck(1)
    folded = tc.fold_post_corr(neck.post_corr)
    k, s = torch.randn(3, 256, 8, 8), torch.randn(3, 256, 16, 16)
    a = tc.fused_correlation(k, s, folded.weights, folded.biases)
    b = tc.reference_fused_correlation(k, s, folded.weights, folded.biases)
    assert torch.equal(a, b)


def test_bad_inputs_name_the_argument():
    neck = _random_neck()
    f = tc.fold_post_corr(neck.post_corr)
    k, s = torch.randn(2, 256, 8, 8), torch.randn(2, 256, 16, 16)
    with pytest.raises(ValueError, match="batch and channels"):
        tc.fused_correlation(k[:1], s, f.weights, f.biases)
    with pytest.raises(ValueError, match=r"weights\[0\] must be \[out, 64\]"):
        tc.fused_correlation(k, s, [f.weights[0][:, :10]], f.biases[:1])
    with pytest.raises(ValueError, match="impl must be one of"):
        tc.fused_correlation(k, s, f.weights, f.biases, impl="cuda")
    with pytest.raises(ValueError, match="share dtype and device"):
        tc.fused_correlation(k.double(), s, f.weights, f.biases)
    with pytest.raises(ValueError, match="depth must be between 1 and 3"):
        tc.FusedCorrelationNeck(neck, depth=4)
    with pytest.raises(ValueError, match="not a 1x1 Conv2d, BatchNorm2d, ReLU triple"):
        tc.fold_post_corr(nn.Sequential(nn.Conv2d(64, 8, 1), nn.ReLU(), nn.BatchNorm2d(8)))


@pytest.mark.skipif(tc.interpreter_enabled(), reason="TRITON_INTERPRET is set in this process")
def test_triton_impl_on_cpu_explains_the_fix():
    f = tc.fold_post_corr(_random_neck().post_corr)
    with pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        tc.fused_correlation(torch.randn(1, 256, 8, 8), torch.randn(1, 256, 16, 16), f.weights, f.biases, impl="triton")


# --------------------------------------------------------------------------- interpreter (subprocess)
INTERPRETER_SCRIPT = r"""
import json, torch
from torch import nn
from alpharefine_sdk.backends import triton_corr as tc
assert tc.interpreter_enabled()
torch.manual_seed(0)
res = {}
def rel(a, r):
    return float((a.float() - r.float()).abs().max() / r.float().abs().max())
from alpharefine_sdk.nn.fusion import CorrelationNeck
neck = CorrelationNeck(64, 128, 64).eval()
for m in neck.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.running_mean.normal_(0, 0.5); m.running_var.uniform_(0.5, 2.0)
        m.weight.data.uniform_(0.5, 1.5); m.bias.data.normal_(0, 0.2)
f = tc.fold_post_corr(neck.post_corr)
k, s = torch.randn(2, 256, 8, 8), torch.randn(2, 256, 16, 16)
with torch.no_grad():
    for d in (1, 2, 3):
        ref = tc.reference_fused_correlation(k, s, f.weights[:d], f.biases[:d])
        out = tc.fused_correlation(k, s, f.weights[:d], f.biases[:d], impl="triton")
        res[f"b2_depth{d}_float32"] = [rel(out, ref), list(out.shape)]
    ref = tc.reference_fused_correlation(k, s, f.weights, f.biases)
    cl = torch.channels_last
    out = torch.empty(2, 64, 16, 16).contiguous(memory_format=cl)
    got = tc.fused_correlation(k.contiguous(memory_format=cl), s.contiguous(memory_format=cl), f.weights, f.biases,
                               impl="triton", out=out)
    res["channels_last_out_float32"] = [rel(out, ref), list(out.stride()), got.data_ptr() == out.data_ptr()]
    got = tc.fused_correlation(k.contiguous(memory_format=cl), s.contiguous(memory_format=cl), f.weights, f.biases,
                               impl="triton")
    res["channels_last_default_out"] = [rel(got, ref), list(got.stride())]
    for dt in (torch.float16, torch.bfloat16):
        out = tc.fused_correlation(k.to(dt), s.to(dt), [w.to(dt) for w in f.weights], f.biases, impl="triton")
        res[f"b2_depth3_{str(dt)[6:]}"] = [rel(out, ref), str(out.dtype)]
    # odd shapes: C not a multiple of the tile, 5x7 template cells, 9x13 search map, odd widths
    k2, s2 = torch.randn(3, 40, 5, 7), torch.randn(3, 40, 9, 13)
    ws = [torch.randn(24, 35) / 6, torch.randn(20, 24) / 5]
    bs = [torch.randn(24), torch.randn(20)]
    ref = tc.reference_fused_correlation(k2, s2, ws, bs)
    out = tc.fused_correlation(k2, s2, ws, bs, impl="triton")
    res["odd_float32"] = [rel(out, ref), list(out.shape)]
print("RESULT" + json.dumps(res))
"""


@pytest.fixture(scope="module")
def interpreted():
    """Run the kernel cases once under the interpreter in a fresh process; returns their errors."""
    if not HAS_TRITON:
        pytest.skip("triton is not installed (pip install 'alpharefine-sdk[gpu]')")
    env = dict(os.environ, TRITON_INTERPRET="1")
    p = subprocess.run([sys.executable, "-c", INTERPRETER_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_interpreter_fp32_matches_reference(interpreted, depth):
    err, shape = interpreted[f"b2_depth{depth}_float32"]
    assert shape == [2, {1: 128, 2: 128, 3: 64}[depth], 16, 16]
    assert err < TOL["float32"]


def test_interpreter_channels_last_and_out(interpreted):
    err, strides, same = interpreted["channels_last_out_float32"]
    assert err < TOL["float32"]
    assert strides == [64 * 256, 1, 16 * 64, 64] and same
    err, strides = interpreted["channels_last_default_out"]
    assert err < TOL["float32"] and strides == [64 * 256, 1, 16 * 64, 64], "output follows the search's memory format"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_interpreter_half_precisions(interpreted, dtype):
    err, out_dtype = interpreted[f"b2_depth3_{dtype}"]
    assert out_dtype == f"torch.{dtype}"
    assert err < TOL[dtype]


def test_interpreter_odd_shapes(interpreted):
    err, shape = interpreted["odd_float32"]
    assert shape == [3, 20, 9, 13]
    assert err < TOL["float32"]


def test_interpreter_flag_did_not_leak(interpreted):
    assert os.environ.get("TRITON_INTERPRET") == _ENV_AT_IMPORT


# --------------------------------------------------------------------------- real compiler, no GPU
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
@pytest.mark.skipif(tc.interpreter_enabled(), reason="TRITON_INTERPRET is set in this process")
def test_kernel_compiles_for_sm90_without_a_gpu():
    """Triton's real compiler (to a cubin, with the ptxas that ships in the wheel) accepts the
    fp16 depth-3 kernel the fast path launches on an H100."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    _, fn = tc._kernel()
    consts = dict(
        DEPTH=3,
        BLOCK_P=64,
        BLOCK_C=128,
        BLOCK_K=64,
        BLOCK_O1=128,
        BLOCK_O2=128,
        BLOCK_O3=64,
        PREC="ieee",
        DOT_F32=False,
    )
    sig = {}
    for name in fn.arg_names:
        if name in consts:
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = "*fp32" if name.startswith("b") else "*fp16"
        else:
            sig[name] = "i32"
    try:
        compiled = triton.compile(ASTSource(fn, signature=sig, constexprs=consts), target=GPUTarget("cuda", 90, 32))
    except RuntimeError as e:  # e.g. no ptxas for this platform
        if "ptxas" in str(e).lower():
            pytest.skip(f"no ptxas to compile with: {e}")
        raise
    assert len(compiled.asm["cubin"]) > 0
    assert "mma" in compiled.asm["ptx"], "the tiles should run on tensor cores"


# --------------------------------------------------------------------------- CUDA
cuda = pytest.mark.skipif(not (CUDA and HAS_TRITON), reason="needs a CUDA device and triton")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("batch", [1, 8, 32])
def test_cuda_kernel_matches_reference(dtype, batch):
    neck = _random_neck(2)
    f = tc.fold_post_corr(neck.post_corr)
    k, s = torch.randn(batch, 256, 8, 8), torch.randn(batch, 256, 16, 16)
    ref = tc.reference_fused_correlation(
        k.double(), s.double(), [w.double() for w in f.weights], [b.double() for b in f.biases]
    )
    kc, sc = k.cuda().to(dtype), s.cuda().to(dtype).contiguous(memory_format=torch.channels_last)
    out = tc.fused_correlation(kc, sc, [w.cuda().to(dtype) for w in f.weights], [b.cuda() for b in f.biases])
    torch.cuda.synchronize()
    assert not tc._TRITON_BROKEN, tc._TRITON_BROKEN
    assert _rel(out.cpu(), ref) < TOL[str(dtype)[6:]]


@pytest.mark.cuda
@cuda
def test_cuda_fused_neck_on_the_parity_network(ar34):
    import copy

    net = ar34.net
    neck = tc.FusedCorrelationNeck(copy.deepcopy(net.neck)).cuda()
    torch.manual_seed(3)
    k, s = torch.randn(4, 256, 8, 8).relu(), torch.randn(4, 256, 16, 16).relu()
    with torch.no_grad():
        ref = net.neck(k, s)
        out = neck(k.cuda(), s.cuda()).cpu()
    assert not tc._TRITON_BROKEN
    assert _rel(out, ref) < TOL["float32"]
    np.testing.assert_array_less(-1e-6, out.numpy())
