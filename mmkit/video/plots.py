"""Video figures, under the name mmkit.video has always used; they live in mmkit.viz.video."""
from ..viz.video import frame_strip, plot_search, plot_segments

__all__ = ["frame_strip", "plot_search", "plot_segments"]
