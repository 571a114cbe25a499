"""Pixel-wise correlation: the one place where template cells meet search features.

``pixelwise_correlation`` is the reference; a fused GPU kernel (``backends/triton_corr.py``)
replaces it on CUDA in the optimised path.
"""

from __future__ import annotations

from torch import Tensor


def pixelwise_correlation(kernel: Tensor, search: Tensor) -> Tensor:
    """Correlate every template cell with every search position.

    Args:
        kernel: ``[B, C, kh, kw]`` template features (the central cells of the template map).
        search: ``[B, C, H, W]`` search features; batch entries pair up by index.

    Returns:
        ``[B, kh*kw, H, W]``; output channel ``r*kw + c`` is the dot product over ``C`` of template
        cell ``(r, c)`` with each search position.
    """
    if kernel.shape[0] != search.shape[0] or kernel.shape[1] != search.shape[1]:
        raise ValueError(
            f"kernel {tuple(kernel.shape)} and search {tuple(search.shape)} must agree in batch and channels"
        )
    # sizes other than the batch as Python ints: an ONNX export traces fewer Shape/Gather chains.
    # The output keeps the traced batch (not -1): the exporter then still knows the spatial sizes,
    # which adaptive pooling downstream needs.
    b, c, h, w = search.shape[0], int(search.shape[1]), int(search.shape[2]), int(search.shape[3])
    cells = int(kernel.shape[2]) * int(kernel.shape[3])
    k = kernel.reshape(-1, c, cells).transpose(1, 2)  # [B, kh*kw, C]
    out = k @ search.reshape(-1, c, h * w)  # [B, kh*kw, H*W]
    return out.view(b, cells, h, w)
