"""matplotlib figures for mmkit: every function returns a Figure and works headless (Agg)."""
from .scenes import image_grid, scene_card, scene_grid

__all__ = ["image_grid", "scene_card", "scene_grid"]
