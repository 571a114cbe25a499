"""The web demo (``alpharefine-sdk demo``, the ``[demo]`` extra): :func:`build_app` builds the Gradio
page, :func:`track_clip` is what it computes. Gradio loads only when the page is built."""

from __future__ import annotations

from .._optional import lazy_getattr

__all__ = ["build_app", "launch", "track_clip", "side_by_side", "DemoRun"]

_LAZY = {
    "build_app": ("app", "build_app"),
    "launch": ("app", "launch"),
    "track_clip": ("core", "track_clip"),
    "side_by_side": ("core", "side_by_side"),
    "DemoRun": ("core", "DemoRun"),
}

__getattr__ = lazy_getattr(__name__, _LAZY)
