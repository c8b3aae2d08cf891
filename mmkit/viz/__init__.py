"""matplotlib figures for mmkit: every function returns a Figure and works headless (Agg)."""
from .attention import caption_strip, compare_methods, layer_head_grid, overlay
from .captions import plot_comparison, plot_losses, plot_word_attention
from .curves import perturbation_curves
from .fusion import plot_cell_predictions, plot_history, plot_results, plot_robustness, plot_tradeoff
from .headview import figure_png, head_scores, head_view
from .scenes import draw_boxes, image_grid, new_figure, scene_card, scene_grid
from .text import plain

__all__ = ["caption_strip", "compare_methods", "draw_boxes", "figure_png", "head_scores", "head_view", "image_grid",
           "layer_head_grid", "new_figure", "overlay", "perturbation_curves", "plain", "plot_cell_predictions", "plot_comparison", "plot_history",
           "plot_losses", "plot_results", "plot_robustness", "plot_tradeoff", "plot_word_attention", "scene_card", "scene_grid"]
