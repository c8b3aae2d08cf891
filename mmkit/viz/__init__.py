"""matplotlib figures for mmkit: every function returns a Figure and works headless (Agg)."""
from .scenes import scene_card, scene_grid

__all__ = ["scene_card", "scene_grid"]
