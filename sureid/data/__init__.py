"""sureid.data."""

from .synthetic import SYNTHETIC_PRESETS, make_synthetic_reid, summarize_reid_folder
