"""Progress bars (mmkit.progress) and the 08 faithfulness table, as a reader of a saved notebook or the book sees them.

A bar must honour TQDM_DISABLE, and an executed-and-saved notebook (nbclient, as scripts/make_book.py and
`jupyter nbconvert --execute` run one) must show each bar finished, or not at all: never its first text,
"contrastive:   0%|          | 0/50", frozen (an outside review found those in 04, 09 and 13 and in the book).
"""
import io
import re
from pathlib import Path

import nbformat
import pytest

from mmkit.progress import bar, disabled_by_env
from mmkit.testing import load_script

REPO = Path(__file__).resolve().parents[1]
cb = load_script(REPO / "scripts" / "check_book.py")


# -- TQDM_DISABLE ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, off", [("1", True), ("true", True), ("yes", True), ("0", False), ("", False),
                                        ("false", False), (None, False)])
def test_tqdm_disable_values(monkeypatch, value, off):
    if value is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", value)
    assert disabled_by_env() is off
    out = io.StringIO()
    b = bar(range(3), desc="steps", file=out, disable=False)  # an explicit disable=False loses to the variable
    assert b.disable is off  # (read before the loop: a closed bar is disabled)
    assert list(b) == [0, 1, 2]
    assert ("steps" in out.getvalue()) is not off


def test_a_training_loop_honours_tqdm_disable(monkeypatch, capsys):
    """A captioner's fit(progress=True) printed its bar whatever TQDM_DISABLE said (tqdm reads TQDM_* only for the
    arguments a caller leaves out, and mmkit passed disable=not progress)."""
    from mmkit.captioning import FitConfig, ShowAndTell, ShowTellConfig
    from mmkit.data import ShapesWorld

    scenes = ShapesWorld(2, seed=0)[:]
    model = ShowAndTell(ShowTellConfig(dim=16, hidden=16), pretrain=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    model.fit([s.image for s in scenes], [s.caption for s in scenes], FitConfig(steps=2, batch_size=2), progress=True)
    assert "show_and_tell" not in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "0")
    model.fit([s.image for s in scenes], [s.caption for s in scenes], FitConfig(steps=2, batch_size=2), progress=True)
    assert "show_and_tell" in capsys.readouterr().err  # shown again: progress=True is not ignored


# -- an executed, saved notebook ------------------------------------------------------------------------------------
CELLS = {
    "fit": "from mmkit.captioning import FitConfig, ShowAndTell, ShowTellConfig\n"
           "from mmkit.data import ShapesWorld\n"
           "scenes = ShapesWorld(2, seed=0)[:]\n"
           "model = ShowAndTell(ShowTellConfig(dim=16, hidden=16), pretrain=False)\n"
           "h = model.fit([s.image for s in scenes], [s.caption for s in scenes], FitConfig(steps=3, batch_size=2))",
    "gone": "from mmkit.progress import bar\n"
            "b = bar(total=4, desc='gone', leave=False)\n"
            "for _ in range(4):\n"
            "    b.update(1)\n"
            "b.close()",
    "stopped": "try:\n"
               "    for i in bar(range(5), desc='stopped'):\n"
               "        if i == 2:\n"
               "            raise KeyboardInterrupt\n"
               "except KeyboardInterrupt:\n"
               "    pass",
    "save": "import tempfile\n"
            "import transformers\n"
            "from mmkit.progress import transformers_bars\n"
            "m = transformers.BertModel(transformers.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,\n"
            "                                                  num_attention_heads=2, intermediate_size=8))\n"
            "with transformers_bars():\n"
            "    m.save_pretrained(tempfile.mkdtemp())",
}


def _execute(monkeypatch, tqdm_disable):
    """Run CELLS in a kernel, as make_book.py does (widget state stored); returns {cell name: its outputs}."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    if tqdm_disable is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", tqdm_disable)  # the kernel inherits this process's environment
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS.values()]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True).execute()
    return nb, dict(zip(CELLS, (c.outputs for c in nb.cells)))


def _texts(outputs) -> list[str]:
    return [o["data"]["text/plain"] for o in outputs if o.get("output_type") == "display_data" and
            "text/plain" in o.get("data", {})]


def test_a_saved_notebook_shows_each_bar_finished_or_not_at_all(monkeypatch):
    nb, out = _execute(monkeypatch, None)
    assert cb.frozen_bars(nb) == [], cb.frozen_bars(nb)
    (fit,) = _texts(out["fit"])  # mmkit's own training loop: finished, with the live widget kept
    assert re.match(r"show_and_tell: 100%\|.*\| 3/3 ", fit), fit
    assert any(cb.WIDGET_VIEW in o.get("data", {}) for o in out["fit"])
    assert _texts(out["gone"]) == []  # leave=False: nothing
    (stopped,) = _texts(out["stopped"])  # a stopped run says where it stopped
    assert re.match(r"stopped:  40%\|.*\| 2/5 ", stopped), stopped
    (saved,) = _texts(out["save"])  # transformers' own bar, through transformers_bars()
    assert saved.startswith("Writing model shards: 100%|") and "1/1" in saved, saved


def test_tqdm_disable_hides_every_bar_in_a_notebook(monkeypatch):
    """What the book and the tests run with (TQDM_DISABLE=1): no bar output at all, transformers' included."""
    nb, out = _execute(monkeypatch, "1")
    assert all(_texts(outputs) == [] for outputs in out.values()), out


def test_the_book_check_finds_a_frozen_bar():
    def nb_with(*outputs):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x", outputs=list(outputs))]
        return nb

    frozen = nbformat.v4.new_output("display_data",
                                    data={"text/plain": "contrastive:   0%|          | 0/50 [00:00<?, ?it/s]"})
    assert cb.frozen_bars(nb_with(frozen)) == ["cell 0: 0%|          | 0/50 ["]
    for fine in ("contrastive: 100%|██████████| 50/50 [00:09<00:00,  5.10it/s]",
                 "scst:  40%|████      | 2/5 [00:01<00:01]",  # stopped: it says where
                 "0%|          | 0/5 [00:00<?, ?it/s]\r100%|##########| 5/5 [00:00<00:00]"):  # a stream ends on 100%
        assert cb.frozen_bars(nb_with(nbformat.v4.new_output("stream", name="stderr", text=fine))) == [], fine
    check = nbformat.v4.new_code_cell("x", outputs=[frozen], metadata={"tags": ["ci-check"]})
    nb = nb_with()
    nb.cells = [check]
    assert cb.frozen_bars(nb) == []  # check cells are not in the book


# -- notebook 08's faithfulness table ------------------------------------------------------------------------------
def _rows(names):
    from mmkit.attention.faithfulness import FaithfulnessTable, Score

    return FaithfulnessTable(Score(n, meth, 12, 0.85, 0.4, 0.08, -3.854, 0.1, -1.654, 0.2, "P", 0.122, 0.1, 0.199, 0.2)
                             for n in names for meth in ("attention", "similarity"))


NAMES = ["shapes-blip-caption", "shapes-blip-caption (re-initialised)", "shapes-vilt-vqa",
         "blip-caption-base (re-initialised)", "/home/me/a/rather/long/folder/my_captioner (re-initialised)"]


def _aligned(lines: list[str]) -> None:
    """Every row as long as the header, the method column where the header's is, and each number's last character
    under its header's (the numbers are right-aligned)."""
    head, rows = lines[0], lines[1:]
    assert rows and len({len(line) for line in lines}) == 1, "\n".join(lines)
    method_at = head.index("method")
    assert all(row[method_at:].startswith(("attention ", "similarity ")) for row in rows), "\n".join(lines)
    headers = list(re.finditer(r"\S+(?: \S+)*", head))  # "del AUC" is one header
    assert [h.group() for h in headers[:2]] == ["model", "method"]
    for row in rows:
        for h in headers[2:]:
            assert row[h.end() - 1] != " " and row[h.end():h.end() + 1] in ("", " "), f"{h.group()!r}:\n{head}\n{row}"


def test_faithfulness_table_columns_line_up_with_long_names():
    table = _rows(NAMES)
    _aligned(str(table).splitlines()[:1 + len(table)])


@pytest.mark.parametrize("names", [NAMES[:3], NAMES], ids=["bundled", "long"])
def test_notebook_08_table_columns_line_up(names, capsys):
    """Cell 33 of 08 (the compact table): the re-initialised rows used to push every column two characters right."""
    nb = nbformat.read(REPO / "notebooks" / "08_attention_explained.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "best at pointing" in c.source]
    exec(cell.source, {"table": _rows(names)})
    _aligned(capsys.readouterr().out.splitlines()[:1 + 2 * len(names)])
