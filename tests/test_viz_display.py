"""mmkit's pyplot-free Figures show as pictures in a fresh Jupyter kernel, not as "<Figure size ...>" text."""
import nbformat
from nbclient import NotebookClient


def test_figures_render_as_png_in_a_fresh_kernel():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import mmkit\nmmkit.viz.image_grid([mmkit.ShapesWorld(1)[0].image])"),
                nbformat.v4.new_code_cell("from mmkit.viz import new_figure\nfig = new_figure((2, 2))\nfig.subplots().plot([0, 1])\nfig")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells:
        data = [o for o in cell.outputs if o.output_type == "execute_result"][0]["data"]
        assert "image/png" in data, data.get("text/plain")
