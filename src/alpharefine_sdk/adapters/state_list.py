"""STARK / OSTrack / MixFormer-style trackers: pytracking's method names, state ``[x, y, w, h]``."""

from __future__ import annotations

from typing import Any, Optional

from .pytracking import PytrackingAdapter
from .writeback import write_state_list


class StateListAdapter(PytrackingAdapter):
    """Refines a tracker that keeps ``self.state = [x, y, w, h]``; same ``initialize`` / ``track``.

    Frames are RGB uint8. Write-back sets ``tracker.state`` to the refined, clipped box (a list of
    floats); STARK-ST and MixFormer then also build their dynamic templates from it. With
    ``write_back=False`` and ``mask=True`` it is the "box -> mask" use of the STARK/MixFormer VOT
    entries: the base box is reported refined but the tracker is left alone, and
    ``result['segmentation']`` carries the mask.
    """

    kind = "state_list"

    @property
    def writes_back(self) -> Optional[str]:
        if self.write_back is False:
            return None
        return "callable" if callable(self.write_back) else "state"

    def _write_state(self, box: Any) -> None:
        write_state_list(self.base, box)
