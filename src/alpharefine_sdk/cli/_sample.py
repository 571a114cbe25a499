"""The real sample sequence of a source checkout (``data/Crossing``), the default input of ``eval``
and ``track``. It is not in the wheel: an installed package asks for an input instead."""

from __future__ import annotations

from pathlib import Path

SAMPLE = Path("data") / "Crossing"


def sample_sequence() -> Path:
    """``data/Crossing`` of the checkout this package was installed from (editable install or a
    run from the source tree), else of the current folder."""
    for root in (Path(__file__).resolve().parents[3], Path.cwd()):
        if (root / SAMPLE / "groundtruth_rect.txt").is_file():
            return root / SAMPLE
    raise FileNotFoundError(
        f"no input given, and the sample sequence ({SAMPLE.as_posix()}) ships only in a source checkout: "
        "pass a dataset, sequence or video path"
    )
