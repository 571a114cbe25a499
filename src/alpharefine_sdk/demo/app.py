"""The Gradio page of ``alpharefine-sdk demo`` (see ``docs/demo.md``): the sample sequence or an
uploaded video, the first box clicked (two corners) or typed, a base tracker; base and refined boxes
with the mask side by side, per-frame IoU when there is ground truth, results to download."""

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .core import TRACKERS, DemoRun, parse_box, side_by_side, track_clip, write_files

TITLE = "alpharefine-sdk: Alpha-Refine on your video"


def _gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo
    from .._optional import require

    return require("gradio")


def _first_frame(path: str) -> np.ndarray:
    """First frame of a video file (RGB) without needing a box yet."""
    import cv2

    cap = cv2.VideoCapture(path)
    ok, frame = cap.read()
    cap.release()
    if not ok or frame is None:
        raise ValueError(f"cannot read a frame from {Path(path).name}: upload a video OpenCV can decode (.mp4, .avi)")
    return np.ascontiguousarray(frame[:, :, ::-1])


def _with_box(rgb: np.ndarray, box: Optional[np.ndarray]) -> np.ndarray:
    from ..cli.track import REFINED_COLOUR, _draw_box

    img = np.ascontiguousarray(rgb.copy())
    _draw_box(img, box, REFINED_COLOUR[::-1], 2)
    return img


def _load(source: Dict[str, Any], box: np.ndarray) -> Any:
    from ..eval.datasets import load_sequence

    if source.get("kind") == "sample":
        return load_sequence(source["path"])
    seq = load_sequence(source["path"], init_box=box)
    return seq


def build_app(
    refiner: Any = None,
    *,
    weights: Any = None,
    device: Optional[str] = None,
    sample: Optional[str] = None,
    max_frames: int = 300,
    default_frames: int = 60,
) -> Any:
    """The Gradio ``Blocks`` app. ``refiner`` (or ``weights``/``device``) is loaded once and cloned per
    run; ``sample`` is a sequence folder offered as the sample (default: ``data/Crossing`` of a
    source checkout, when there is one); ``max_frames`` bounds each run (time and memory)."""
    gr = _gradio()
    import pandas as pd

    if refiner is None:
        from ..refiner import Refiner

        refiner = Refiner.from_pretrained(weights, device=device)
    if sample is None:
        try:
            from ..cli._sample import sample_sequence

            sample = str(sample_sequence())
        except (ImportError, FileNotFoundError):
            sample = None
    max_frames = max(2, int(max_frames))

    def use_sample() -> Tuple[Any, ...]:
        from ..eval.datasets import load_sequence

        seq = load_sequence(sample)
        box = seq.init_box
        src = {"kind": "sample", "path": sample, "gt": seq.gt.tolist()}
        text = ",".join(f"{v:g}" for v in box)
        return (
            src,
            _with_box(seq.frame(0, "RGB"), box),
            text,
            None,
            f"sample: {seq.name} ({len(seq)} frames, with ground truth)",
        )

    def use_upload(file: Any) -> Tuple[Any, ...]:
        if file is None:
            return gr.update(), gr.update(), gr.update(), None, gr.update()
        path = file if isinstance(file, str) else getattr(file, "name", str(file))
        try:
            rgb = _first_frame(path)
        except ValueError as e:
            raise gr.Error(str(e)) from None
        return (
            {"kind": "upload", "path": path, "gt": None},
            rgb,
            "",
            None,
            f"video: {Path(path).name}; click two corners",
        )

    def click(source: Any, corner: Any, evt: gr.SelectData) -> Tuple[Any, ...]:
        if not source:
            raise gr.Error("load the sample or upload a video first")
        x, y = (float(v) for v in evt.index[:2])
        rgb = _first_frame(source["path"]) if source["kind"] == "upload" else _load(source, None).frame(0, "RGB")
        if corner is None:
            return (x, y), _with_box(rgb, None), gr.update()
        x0, y0 = corner
        box = np.array([min(x0, x), min(y0, y), abs(x - x0) + 1, abs(y - y0) + 1])
        return None, _with_box(rgb, box), ",".join(f"{v:g}" for v in box)

    track_progress = gr.Progress()  # a default of this type tells Gradio to pass the run's progress bar

    def run(
        source: Any, box_text: str, tracker: str, frames: float, gt_file: Any, progress: Any = track_progress
    ) -> Tuple[Any, ...]:
        from ..eval.datasets import read_boxes

        if not source:
            raise gr.Error("load the sample or upload a video first")
        try:
            box = parse_box(box_text)
            seq = _load(source, box)
            gt = np.asarray(source["gt"], dtype=np.float64) if source.get("gt") is not None else None
            if gt_file is not None:
                gt = read_boxes(gt_file if isinstance(gt_file, str) else gt_file.name)
            n = min(len(seq), int(frames), max_frames)
            if gt is not None and len(gt) < n:
                raise ValueError(
                    f"the ground truth has {len(gt)} boxes for {n} frames; give one x,y,w,h line per frame"
                )
            r = track_clip(
                seq,
                box,
                tracker,
                refiner,
                max_frames=n,
                gt=None if gt is None else gt[:n],
                progress=lambda i, k: progress(i / k, desc="tracking"),
            )
        except (ValueError, FileNotFoundError) as e:
            raise gr.Error(str(e)) from None
        files = write_files(r, seq, Path(tempfile.mkdtemp(prefix="alpharefine-demo-")))
        last = len(r) - 1
        rows = []
        for i in range(len(r)):
            rows.append(
                [
                    i,
                    *np.round(r.base[i], 1),
                    *np.round(r.refined[i], 1),
                    None if r.iou_base is None else round(float(r.iou_base[i]), 3),
                    None if r.iou_refined is None else round(float(r.iou_refined[i]), 3),
                ]
            )
        table = pd.DataFrame(
            rows,
            columns=[
                "frame",
                "base x",
                "base y",
                "base w",
                "base h",
                "refined x",
                "refined y",
                "refined w",
                "refined h",
                "IoU base",
                "IoU refined",
            ],
        )
        s = r.summary()
        text = f"**{s['frames']} frames**, {tracker} and {tracker}+AR."
        plot = None
        if r.iou_base is not None:
            text += f" Mean IoU with the ground truth: base **{s['mean_iou_base']:.3f}**, refined **{s['mean_iou_refined']:.3f}**."
            plot = pd.DataFrame(
                {
                    "frame": list(range(len(r))) * 2,
                    "IoU": np.concatenate([r.iou_base, r.iou_refined]),
                    "boxes": [tracker] * len(r) + [f"{tracker}+AR"] * len(r),
                }
            )
        return (
            text,
            side_by_side(r, seq, last),
            gr.update(minimum=0, maximum=last, value=last, interactive=True),
            plot,
            table,
            [str(p) for p in files.values()],
            (r, seq),
        )

    def show(state: Any, i: float) -> Any:
        if not state:
            return gr.update()
        r, seq = state
        return side_by_side(r, seq, int(i))

    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(
            f"## {TITLE}\nThe base tracker's box (red, left) and the refined box (green, right) with the "
            "refiner's mask (blue); the ground truth in white when there is some."
        )
        source = gr.State(None)
        corner = gr.State(None)
        result = gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                sample_btn = gr.Button("Use the sample", elem_id="sample", interactive=sample is not None)
                upload = gr.File(label="or upload a video", file_types=["video"], elem_id="upload", height=110)
                status = gr.Markdown(
                    "no input yet" if sample is not None else "no sample in this installation: upload a video",
                    elem_id="status",
                )
                first = gr.Image(
                    label="first frame: click two corners of the target",
                    type="numpy",
                    interactive=False,
                    elem_id="first",
                )
                box = gr.Textbox(label="first box x,y,w,h", elem_id="box")
                with gr.Row():
                    tracker = gr.Dropdown(list(TRACKERS), value="csrt", label="base tracker", elem_id="tracker")
                    frames = gr.Slider(
                        2, max_frames, value=min(default_frames, max_frames), step=1, label="frames", elem_id="frames"
                    )
                gt_file = gr.File(label="ground truth (optional): x,y,w,h per line", elem_id="gt", height=110)
                go = gr.Button("Track and refine", variant="primary", elem_id="run")
            with gr.Column(scale=3):
                summary = gr.Markdown(elem_id="summary")
                view = gr.Image(label="base | refined + mask", type="numpy", interactive=False, elem_id="view")
                frame = gr.Slider(0, 1, value=0, step=1, label="frame", interactive=False, elem_id="frame")
                plot = gr.LinePlot(
                    x="frame", y="IoU", color="boxes", label="IoU per frame", elem_id="plot", y_lim=[0, 1]
                )
                table = gr.Dataframe(label="boxes per frame", elem_id="table", max_height=300)
                files = gr.File(label="results", file_count="multiple", elem_id="files")
        sample_btn.click(use_sample, None, [source, first, box, corner, status])
        upload.change(use_upload, upload, [source, first, box, corner, status])
        first.select(click, [source, corner], [corner, first, box])
        go.click(
            run,
            [source, box, tracker, frames, gt_file],
            [summary, view, frame, plot, table, files, result],
            concurrency_limit=1,
        )
        frame.change(show, [result, frame], view)
    return app


def launch(app: Any, *, host: str = "127.0.0.1", port: Optional[int] = None, block: bool = True) -> Any:
    """Serve ``app`` (no share link, no server-side rendering, system fonts)."""
    gr = _gradio()
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    return app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        quiet=True,
        prevent_thread_lock=not block,
        theme=theme,
        footer_links=[],
        show_error=True,
    )


__all__ = ["build_app", "launch", "DemoRun"]
