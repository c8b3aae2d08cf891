"""The fusion chapter's figures, under the name the notebooks import; they live in mmkit.viz.fusion."""
from ..viz.fusion import plot_results, plot_tradeoff, plot_history, plot_robustness, plot_cell_predictions

__all__ = ["plot_results", "plot_tradeoff", "plot_history", "plot_robustness", "plot_cell_predictions"]
