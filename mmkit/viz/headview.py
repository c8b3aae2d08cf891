"""A head view for vision-language attention (after bertviz's head and model views): every layer by every
head as a grid of small maps for one word, the heads of each layer sortable by how much they concentrate on
the word's object or, without ground truth, by entropy. Returns a Figure; `figure_png` exports it for slides,
`head_view_html` as one self-contained HTML page (PNGs embedded; click a cell to enlarge it, no JavaScript).
"""
from __future__ import annotations

import io

import numpy as np

from ..errors import InputError
from .scenes import new_figure
from .text import wrapped

SORTS = ("layer", "entropy", "object")  # heads in model order; most focused first; most mass on the object first


def require_heads(maps, what: str) -> None:
    """InputError unless the maps have raw attention by layer and head (ALIGN's Grad-CAM and CLIP's maps have none)."""
    if maps.attn is not None:
        return
    name = maps.model or "these maps"
    method = maps.methods[0] if maps.methods else "gradcam"
    raise InputError(f"{what} needs attention heads, and {name} has no attention heads: its maps are "
                     f"{', '.join(maps.methods) or 'none'}, one map per word and method. Draw one with "
                     f"mmkit.viz.overlay(maps.image, maps.for_token(word, method={method!r})), or all of them side "
                     "by side with mmkit.viz.compare_methods(maps, word)")


def heads_note(maps) -> str:
    """" (...)" saying the heads do not depend on the word, for maps whose raw attention is the image's own (CLIP's
    CLS attention); "" for others."""
    if not getattr(maps, "notes", {}).get("attention_is_text_independent"):
        return ""
    return f" ({maps.model or 'this model'}'s heads are its image's CLS attention: the same for every word)"


def _need_box(box, name: str) -> None:
    """InputError when the head order by object (given as name=, "by" or "sort") has no box."""
    if box is None:
        raise InputError(f"{name}='object' needs the object's box=(x0, y0, x1, y1) in maps.image's pixels (maps.box(b) "
                         f"moves a box b of the picture you passed there); without one use {name}='entropy'")


def head_scores(maps, word, by: str = "entropy", box=None) -> np.ndarray:
    """One score per layer and head, (L, H): the entropy of the head's map in bits ("entropy"; low = focused),
    or the share of its mass inside box = (x0, y0, x1, y1) in image pixels ("object")."""
    from ..metrics import mass_in_box

    require_heads(maps, "head_scores")
    if by not in ("entropy", "object"):
        raise InputError(f"by={by!r}: use 'entropy' or 'object'")
    if by == "object":
        _need_box(box, "by")
    L, H = maps.layers, maps.heads
    out = np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            if by == "object":
                out[l, h] = mass_in_box(maps.for_token(word, layer=l, head=h, size="image", method="attention"), box)
            else:  # entropy
                heat = maps.for_token(word, layer=l, head=h, method="attention")
                p = np.clip(np.asarray(heat, dtype=np.float64).ravel(), 0, None)
                p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1.0 / p.size)
                out[l, h] = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    return out


def head_order(maps, word, sort: str = "layer", box=None) -> tuple[list[list[int]], np.ndarray | None]:
    """The heads of each layer in display order, and their scores (L, H) (None for sort="layer"): by entropy the
    most focused first, by object the most mass inside box first."""
    if sort not in SORTS:
        raise InputError(f"sort={sort!r}: use one of {SORTS}")
    require_heads(maps, "the head view")
    if sort == "object":
        _need_box(box, "sort")
    if sort == "layer":
        return [list(range(maps.heads)) for _ in range(maps.layers)], None
    scores = head_scores(maps, word, sort, box)
    return [[int(h) for h in np.argsort(s if sort == "entropy" else -s, kind="stable")] for s in scores], scores


def head_view(maps, word, sort: str = "layer", box=None, alpha: float = 0.6, cell: float = 1.1,
              selected: tuple[int, int] | None = None):
    """Every layer (rows) by every head (columns) of one word's raw attention. Returns the Figure.

    Args:
        maps: AttentionMaps with raw attention.
        word: a word of the text or its index.
        sort: "layer" (heads in model order), "entropy" (each layer's most focused heads first) or "object"
            (each layer's heads with the most mass inside box first).
        box: the word's object (x0, y0, x1, y1) in maps.image's pixels (maps.box(b) moves a box b of the picture
            you passed there): drawn dashed, and needed for sort="object".
        cell: inches per small map.
        selected: (layer, head) outlined in red (the cell a viewer enlarges).
    """
    from matplotlib.patches import Rectangle

    orders, scores = head_order(maps, word, sort, box)
    L, H = maps.layers, maps.heads
    w, h = maps.image.size
    fig = new_figure((cell * H + 0.6, cell * L + 0.5))
    axes = np.array(fig.subplots(L, H, squeeze=False))
    for l in range(L):
        for col, hd in enumerate(orders[l]):
            ax = axes[l, col]
            ax.imshow(maps.image)
            ax.imshow(maps.for_token(word, layer=l, head=int(hd), method="attention"), cmap="jet", alpha=alpha,
                      extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
            ax.set_xticks([]), ax.set_yticks([])
            label = f"h{hd}" if scores is None else f"h{hd} {scores[l, hd]:.2f}"
            ax.set_title(label, fontsize=6, pad=1)
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8, ec="w"))
            if selected is not None and (l, int(hd)) == tuple(selected):
                for s in ax.spines.values():
                    s.set_edgecolor("red"), s.set_linewidth(2.5)
            if col == 0:
                ax.set_ylabel(f"layer {l}", fontsize=6)
    how = {"layer": "heads in order", "entropy": "heads by entropy (bits, focused first)",
           "object": "heads by mass on the object"}[sort]
    title = f"'{maps.words[maps.index(word)]}' ({maps.model}): {how}{heads_note(maps)}"
    fig.suptitle(wrapped(title, cell * H + 0.6, 8), fontsize=8)
    return fig


def figure_png(fig, path=None, dpi: int = 110) -> bytes:
    """The Figure as PNG bytes (written to path too when given; a missing folder is made): a static export for
    slides."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    data = buf.getvalue()
    if path is not None:
        write_file(path, data)
    return data


def write_file(path, data: bytes) -> None:
    """Write data to path, making its folder when it is missing (as mmkit's other writers do); an InputError naming
    the path when it is a folder or cannot be written."""
    import os
    from pathlib import Path

    out = Path(os.fspath(path)).expanduser()
    if out.is_dir():
        raise InputError(f"{str(out)!r} is a folder; pass the path of a file to write, e.g. one in that folder")
    for parent in (out.parent, *out.parent.parents):  # the first part of the folder that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot write {str(out)!r}: {str(parent)!r} is a file, not a folder; "
                                 "pick another path")
            break
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as e:
        raise InputError(f"cannot write {str(out)!r} ({e.strerror or e}); pick a folder you can write to") from None


def cell_image(maps, word, layer: int, head: int, size: int = 160, alpha: float = 0.6):
    """One head's map over the image as an RGB PIL image, the longer side `size` pixels (no matplotlib figure)."""
    from matplotlib import colormaps
    from PIL import Image

    require_heads(maps, "cell_image")
    w, h = maps.image.size
    scale = size / max(w, h)
    out = (max(1, round(w * scale)), max(1, round(h * scale)))
    heat = maps.for_token(word, layer=layer, head=head, size=(out[1], out[0]), method="attention")
    heat = heat.astype(np.float64)  # (H, W)
    lo, hi = heat.min(), heat.max()
    heat = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    color = colormaps["jet"](heat)[..., :3]  # (H, W, 3) in 0..1
    base = np.asarray(maps.image.convert("RGB").resize(out, Image.BILINEAR), dtype=np.float64) / 255.0
    return Image.fromarray(np.uint8(255 * ((1 - alpha) * base + alpha * color)))


def _png_uri(im) -> str:
    import base64

    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td{padding:2px;text-align:center;
font-size:11px}td img{display:block;border:2px solid transparent}a:hover img{border-color:#d00}
.big{display:none;margin-top:1em}.big:target{display:block}.big img{border:1px solid #888}"""


def head_view_html(maps, word, sort: str = "layer", box=None, path=None, cell: int = 96, big: int = 384,
                   alpha: float = 0.6) -> str:
    """The head view as one self-contained HTML page for slides: a layer x head table of small maps (PNGs
    embedded as data URIs), each a link that shows its enlarged map below (CSS :target, no JavaScript).

    Args:
        maps, word, sort, box: as head_view.
        path: also write the page there (UTF-8); a missing folder is made.
        cell, big: pixels of the longer side of a small map and of an enlarged one.
    Returns the HTML text.
    """
    import html

    orders, scores = head_order(maps, word, sort, box)
    name = maps.words[maps.index(word)]
    how = {"layer": "heads in order", "entropy": "heads by entropy (bits, focused first)",
           "object": "heads by mass on the object"}[sort]
    rows, bigs = [], []
    for l, order in enumerate(orders):
        tds = []
        for hd in order:
            label = f"h{hd}" + ("" if scores is None else f" {scores[l, hd]:.2f}")
            tds.append(f'<td><a href="#l{l}h{hd}"><img src="{_png_uri(cell_image(maps, word, l, hd, cell, alpha))}" '
                       f'alt="layer {l} head {hd}"></a>{label}</td>')
            bigs.append(f'<div class="big" id="l{l}h{hd}"><b>layer {l}, head {hd}</b>'
                        + ("" if scores is None else f" ({sort} {scores[l, hd]:.3f})")
                        + f'<br><img src="{_png_uri(cell_image(maps, word, l, hd, big, alpha))}" '
                          f'alt="layer {l} head {hd}, enlarged"></div>')
        rows.append(f"<tr><th>layer {l}</th>{''.join(tds)}</tr>")
    title = html.escape(f"'{name}' ({maps.model}): {how}")
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head>'
            f"<body><h3>{title}</h3><p>{html.escape(maps.text)}</p><p>Click a map to enlarge it.</p>"
            f"<table>{''.join(rows)}</table>{''.join(bigs)}</body></html>\n")
    if path is not None:
        write_file(path, page.encode("utf-8"))
    return page
