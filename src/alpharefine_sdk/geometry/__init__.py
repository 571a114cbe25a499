"""Crop geometry: search windows, crops, normalisation and the maps back to the frame."""

from .crop import CropWindow, box_from_corners, box_in_crop, crop_patch, crop_window, paste_mask
from .normalize import normalize_crops

__all__ = [
    "CropWindow",
    "crop_window",
    "crop_patch",
    "box_from_corners",
    "box_in_crop",
    "paste_mask",
    "normalize_crops",
]
