"""matplotlib figures for mmkit: every function returns a Figure and works headless (Agg)."""
from .attention import caption_strip, compare_methods, layer_head_grid, overlay
from .charts import prob_chart
from .captions import plot_comparison, plot_losses, plot_word_attention
from .curves import perturbation_curves
from .fusion import plot_cell_predictions, plot_history, plot_results, plot_robustness, plot_tradeoff
from .headview import cell_image, figure_png, head_order, head_scores, head_view, head_view_html
from .scenes import draw_boxes, image_grid, new_figure, scene_card, scene_grid
from .text import plain

__all__ = ["caption_strip", "cell_image", "compare_methods", "draw_boxes", "figure_png", "head_order", "head_scores",
           "head_view", "head_view_html", "image_grid", "layer_head_grid", "new_figure", "overlay",
           "perturbation_curves", "plain", "plot_cell_predictions", "plot_comparison", "plot_history",
           "plot_losses", "plot_results", "plot_robustness", "plot_tradeoff", "plot_word_attention", "prob_chart", "scene_card", "scene_grid"]
