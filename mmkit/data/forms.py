"""Is a shape one of ShapesWorld's forms? Its objects are circles, squares and triangles (base as long as the height),
drawn filled and whole. Asked about a star, a heart, an arrow, a cross, a crescent, an ellipse or a bar, the bundled
models name the nearest of their three shapes with confidence: an outside tester's 36 such drawings got no notice on
29, shapes-clip put 0.90 or more on one label for 22 of those, and 14 of their captions made up a second shape.

other_forms reads each whole shape of a picture on a one-colour background (turns.ground_shapes) in a colour (the
detector and hues.odd_colours speak for black, white and grey ones), at least as large as ShapesWorld draws them
(turns.SMALL) and MIN_FORM pixels of the reading's copy, and names those whose outline none of the three has:
- "long": its second moments' axes differ by more than ELONGATION (ShapesWorld's triangle 1.15; ellipses, bars,
  half discs, arrows and crescents 1.8-7), unless it is a convex shape filling about half its box, a triangle: an
  outside tester's tall triangles (base 0.6-0.7 of the height, elongation about 1.9) were named right by every model;
- "pointed": it fills less than SOLIDITY of its convex hull (its pixels over the area of their centres' hull, a
  little over 1 for a convex shape: stars 0.54-0.61, crosses 0.69-0.72, crescents 0.5; 99% of ShapesWorld's shapes
  0.9 or more in its one-colour looks, the hand-drawn held-out look included);
- "hollow": holes (the background inside it) make more than HOLES of it (rings 0.35, ShapesWorld's 0.06 at most);
- "marked": holes make more than MARKS of it, a letter, a face or a sign drawn on it in the background's colour (an
  outside tester's logo letter 0.056, smiley 0.075, play button 0.14, stop sign 0.062; the models made up a second
  shape of the same colour for most such pictures, "a large blue square above a large blue square").
- "patterned": holes make more than HOLES of it and there are PATTERN of them or more: a shape hatched with lines
  inside its outline (an outside tester's were told "one with a hole, like a ring", 12 of 12);
- "leaning": a triangle with its base below whose tip lies more than LEAN of its width from above the base's middle
  (a right-angled one: the models called an outside tester's circles or squares; see _form_kind).
Squares with rounded corners are not read: ShapesWorld's own squares read as rounded as the drawings the captioner
called circles (31 of 196 of 32 px or more in its held-out looks read a corner radius over 0.085 of the side, up to
0.26: blur rounds a small square's corners), while the models named those right.
Octagons, hexagons and pentagons pass as circles, and a heart (1.28, 0.92) as its nearest shape: the models'
answers for them are the nearest of their shapes, which is what a learner would say too.

A closed outline in a colour (a circle, square or triangle drawn and not filled, an outlined warning sign) as large
as a shape is read too ("outline"): ShapesWorld draws its shapes filled, and the tester's outlined triangles were
captioned "a small red triangle above a large red square" with no notice. No ShapesWorld scene has one (1,950 held
out); an outline in black or grey (a chart's axes) is left to the detector.

nested_count counts the coloured shapes drawn on a shape that has no colour of its own (the lamps of a traffic light
in its housing), which the picture check's colour count misses: a housing and its lamps are one shape on the ground.

A shape judged other is judged again on its fill colour's pixels alone, and passes when those make a circle, square
or triangle and leave out a fifth of it or more: two shapes of different colours that touch read as one on the
ground, and are not one other shape.

Measured on 1,950 held-out ShapesWorld scenes (150 in each of the 13 looks, split "test") the detector passes: 2 get
an other_forms reading, one on a photo background and one on the held-out photo-test backgrounds, where a shape
touches a photo's part of its colour and the two read as one; no scene gets a nested_count. On PIL drawings of 9 such
forms (a star, a cross, an arrow, a crescent, an ellipse, a ring, a bar, a half disc, a 2:1 rectangle) at 64, 128
and 300 px on white, grey and dark sheets, every one was read, and no circle, square, triangle, octagon, hexagon,
pentagon or heart (tests/test_forms.py). An outside tester's drawings, never used to choose the limits: 25 of 36
such shapes read (the other 11 hearts, pentagons, hexagons and octagons), and 19 of 19 traffic lights with three
lamps counted as 3 shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .turns import _EIGHT, SMALL, Ground, on_ground, whole_parts

ELONGATION = 1.6  # square root of the ratio of a shape's second moments' axes (ShapesWorld's at most 1.46, sketched)
SOLIDITY = 0.75  # its pixels over the area of their centres' convex hull (see the module docstring)
HOLES = 0.15  # share of a shape (holes filled) that is holes (ShapesWorld's at most 0.06): a ring
MARKS = 0.04  # less, but more than this: marks on it (a letter, a face; ShapesWorld's sketched shapes 0.026 at p99)
PATTERN = 8  # holes in a shape, more than HOLES of it, that make it a pattern (hatching), not a ring (the letters of a
# word on a sign, split in pieces at FORM_SIDE, make less than HOLES of it: marks)
NEAR = 96  # a shape's pixels are those this close to its fill colour in every channel (red and blue differ by 180)
TOUCHING = 0.2  # a shape whose fill colour leaves out this share of it, and makes a known form, is two touching shapes
FORM_SIDE = 64  # a shape's form is read on every k-th pixel, so that it is at most this many pixels across
CLOSED = 0.45  # share of its box a filled outline covers (a triangle 0.5, a circle 0.78)
TRIANGLE = (0.4, 0.6)  # the share of its box an upright triangle fills (a half), read as a triangle however tall
MIN_FORM = 16  # pixels of the work copy a shape's longest side needs to be judged (a smaller one's outline is jagged)
MIN_WIDTH = 4  # pixels of the work copy: a thinner piece is a line, not a shape to judge
LEAN = 0.3  # a triangle whose tip lies further than this share of its width from its middle leans (right-angled: 0.47)


@dataclass
class OtherForm:
    """A shape none of ShapesWorld's circle, square and triangle is."""

    kind: str  # "long" | "pointed" | "hollow" | "marked" | "patterned" | "leaning" (a triangle) | "outline"
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the picture's pixels, x1/y1 exclusive
    elongation: float  # sqrt of the ratio of its second moments' axes: 1 for a circle, square or regular polygon
    solidity: float  # share of its convex hull it fills (holes filled): about 1 for convex shapes; the share of its
    # box (less) when that is SOLIDITY or more already, and 1 for a hollow shape (neither read)
    holes: float  # share of it (holes filled) that is holes


@on_ground
def other_forms(image: Image.Image, found: Ground) -> list[OtherForm]:
    """The coloured whole shapes of a picture on a one-colour background that are no circle, square or triangle;
    None (no opinion) on other backgrounds (turns.on_ground)."""
    from .hues import fill_colours, two_colours, vivid

    short = min(found.labels.shape)
    out = []
    for j, ((_, i, (rows, cols)), rgb) in enumerate(zip(found.shapes, fill_colours(found))):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if rgb is None or not vivid(rgb) or max(h, w) < max(SMALL * short, MIN_FORM) or min(h, w) < MIN_WIDTH:
            continue
        whole = found.labels[rows, cols] == i
        kind, form = _form_kind(whole, found.dist[rows, cols])
        if kind is None:
            continue
        own = whole & _near(found.pixels[rows, cols], rgb)  # its fill colour's part
        if ((own.sum() < (1 - TOUCHING) * whole.sum() and _form_kind(own, found.dist[rows, cols])[0] is None)
                or two_colours(found, j)):
            continue  # two shapes of different colours that touch: each may be a circle, square or triangle
        out.append(OtherForm(kind, found.box((rows, cols)), *(round(float(v), 3) for v in form[:3])))
    return out + _outlines(found)


def _outlines(found) -> list[OtherForm]:
    """The coloured closed outlines among a reading's strokes (turns.Ground.strokes): filled, they cover CLOSED of
    their box or more, as a drawn circle, square or triangle would."""
    from scipy import ndimage

    from .hues import vivid

    out = []
    for _, i, (rows, cols) in found.strokes:
        own = found.labels[rows, cols] == i
        colour = np.median(found.pixels[rows, cols][own], 0)
        if vivid(colour) and ndimage.binary_fill_holes(own).mean() >= CLOSED:
            out.append(OtherForm("outline", found.box((rows, cols)), *(round(float(v), 3) for v in _form(own)[:3])))
    return out


def _form_kind(whole: np.ndarray, dist: np.ndarray) -> tuple[str | None, tuple]:
    """(OtherForm's kind or None, _form's reading) of a shape's mask (its box's window) and its pixels' distances from
    the ground (turns.Ground.dist there): its outline's kind (_kind), or, for one that reads as a triangle, whether it
    leans (_lean). On PIL triangles at 48-300 px, anti-aliased, with and without JPEG (q40), the lean read is 0.93 of
    the drawn one, within 0.015. The models named triangles right whose tip lay up to 0.25 of the base from its
    middle; from 0.3 shapes-vilt-vqa called them squares or circles at half the picture's side, and from 0.4 (0.5 is
    a right-angled one) every model mostly did (18 drawings each: shapes-clip 0 right from 0.4, the captioner 4 at
    0.5). So LEAN is 0.3 as read: drawn leans of 0.35 or more are read, 0.3 or less not."""
    form = _form(whole)
    kind = _kind(form)
    _, solidity, _, fill, _ = form
    if kind is not None or not (TRIANGLE[0] <= fill <= TRIANGLE[1] and solidity >= 0.9):
        return kind, form
    core = _core(whole, dist)
    return ("leaning" if core is not None and _lean(core) > LEAN else None), form


def _core(whole: np.ndarray, dist: np.ndarray) -> np.ndarray | None:
    """A shape's mask (its box's window) where it covers at least half of each pixel (its distance from the ground
    over half its median: no blurred or JPEG-rung rim), read at most FORM_SIDE across and cropped to its own box."""
    step = -(-max(whole.shape) // FORM_SIDE)
    whole, dist = whole[::step, ::step], dist[::step, ::step]
    if not whole.any():
        return None
    core = whole & (dist > 0.5 * float(np.median(dist[whole])))
    rows, cols = np.nonzero(core.any(1))[0], np.nonzero(core.any(0))[0]
    if len(rows) < 2 or len(cols) < 2:
        return None
    return core[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _lean(core: np.ndarray) -> float:
    """How far a triangle's tip lies from above its base's middle, as a share of its width (0 for ShapesWorld's, 0.47
    read for a right-angled one); 0 when its lowest tenth of rows spans under half its width (it has no base
    below: turned, or pointing down, which turns.turned_shapes reads)."""
    h, w = core.shape
    band = max(1, h // 10)
    base = np.nonzero(core[-band:].any(0))[0]
    if not len(base) or base[-1] - base[0] + 1 < 0.5 * w:
        return 0.0
    xs = np.nonzero(core[:band])[1]
    return float(abs(xs.mean() + 0.5 - w / 2) / w) if len(xs) else 0.0


def _kind(form: tuple[float, float, float, float, int]) -> str | None:
    """OtherForm's kind for _form's (elongation, solidity, holes, box share, number of holes), or None for a circle,
    square or triangle's. A tall or right-angled triangle is long too, but not "long" (TRIANGLE: a convex shape that
    fills about half its box): the models name a tall one right. A shape with PATTERN holes or more is "patterned"
    (an outlined shape hatched with lines: an outside tester's 12 of 12 were "one with a hole, like a ring")."""
    elongation, solidity, holes, fill, pieces = form
    triangle = TRIANGLE[0] <= fill <= TRIANGLE[1] and solidity >= 0.9
    return ("patterned" if holes > HOLES and pieces >= PATTERN else "hollow" if holes > HOLES else
            "marked" if holes > MARKS else "pointed" if solidity < SOLIDITY else
            "long" if elongation > ELONGATION and not triangle else None)


def _near(pixels: np.ndarray, rgb) -> np.ndarray:
    """(h, w) bool: the pixels within NEAR of a colour in every channel (a shape's own fill, with most of its blended
    edge, and not the other-coloured shape it touches)."""
    return (np.abs(pixels.astype(np.int16) - np.asarray(rgb, np.int16)) <= NEAR).all(-1)


def _form(own: np.ndarray) -> tuple[float, float, float, float, int]:
    """(elongation, solidity, holes, the share of its box it fills, how many holes: counted only when they make more
    than HOLES of it) of a shape's mask (its box's window); solidity only as far as SOLIDITY tells
    (OtherForm.solidity)."""
    from scipy import ndimage

    step = -(-max(own.shape) // FORM_SIDE)  # read at most FORM_SIDE pixels across: the same form, less work
    own = own[::step, ::step]
    filled = ndimage.binary_fill_holes(own)
    area = float(filled.sum())
    if not area:  # nothing left of it at this step
        return 1.0, 1.0, 0.0, 1.0, 0
    ys, xs = np.nonzero(filled)
    x, y = xs - xs.mean(), ys - ys.mean()
    a, b, c = float(np.dot(x, x)), float(np.dot(x, y)), float(np.dot(y, y))  # second moments (times the area)
    root = float(np.hypot(a - c, 2 * b))
    elongation = float(np.sqrt((a + c + root) / max(a + c - root, 1e-6)))  # the axes' ratio, squared under the root
    holes = 1.0 - float(own.sum()) / max(area, 1.0)
    fill = area / filled.size
    pieces = ndimage.label(filled & ~own)[1] if holes > HOLES else 0
    if holes > HOLES:  # hollow: the hull, most of the cost, is not needed
        return elongation, 1.0, holes, fill, pieces
    if fill >= SOLIDITY:  # fills SOLIDITY of its box, so of its hull too (a circle, an upright square)
        return elongation, fill, holes, fill, pieces
    return elongation, area / max(_hull_area(filled), 1.0), holes, fill, pieces


def _hull_area(mask: np.ndarray) -> float:
    """The area of the convex hull of a mask's pixel centres, from each row's first and last pixel (Andrew's monotone
    chain: faster here than qhull's call). A convex shape's pixels outnumber it by about half its perimeter, so its
    solidity is a little over 1."""
    rows = np.nonzero(mask.any(1))[0]
    first = mask[rows].argmax(1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(1)
    pts = sorted(set(zip(first.tolist(), rows.tolist())) | set(zip(last.tolist(), rows.tolist())))
    if len(pts) < 3:
        return float(mask.sum())

    def half(points):
        chain = []
        for p in points:
            while len(chain) >= 2 and ((chain[-1][0] - chain[-2][0]) * (p[1] - chain[-2][1]) -
                                       (chain[-1][1] - chain[-2][1]) * (p[0] - chain[-2][0])) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    hull = half(pts)[:-1] + half(pts[::-1])[:-1]
    x, y = np.array(hull, float).T
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def nested_count(found) -> int:
    """How many coloured shapes a picture shows when some are drawn on a shape of no colour (black, white or grey, at
    least turns.SMALL of the picture's short side): the coloured regions of the whole picture, counted as
    count_shapes counts them (whole, not specks or strokes); 0 when no such shape holds two or more of them, or the
    background is not one colour (found: turns.ground_shapes' reading, or None)."""
    from scipy import ndimage

    from .framing import STEP
    from .hues import fill_colours, vivid

    if found is None or not found.shapes:
        return 0
    hosts = [i for (_, i, sl), rgb in zip(found.shapes, fill_colours(found))
             if rgb is not None and not vivid(rgb) and found.share(sl) >= SMALL]
    if not hosts:
        return 0
    x = found.pixels.astype(np.int16)
    top = x.max(-1)
    coloured = (top - x.min(-1) >= 0.45 * top) & (top >= 51) & (found.dist > 2 * STEP)
    labels, n = ndimage.label(coloured, _EIGHT)
    if not n:
        return 0
    kept = [(area, i) for area, i, _, filled in whole_parts(labels, n) if filled]  # whole shapes, as on the ground
    host_of = np.bincount(labels.ravel(), weights=np.isin(found.labels, hosts).ravel(), minlength=n + 1)
    on_host = [i for area, i in kept if host_of[i] > area / 2]
    return len(kept) if len(on_host) >= 2 else 0


PLAIN_MATCH = 0.85  # overlap (IoU) a shape needs with the circle, square or triangle of its area and centre
PLAIN_SHARE = 0.9  # share of a picture's pixels off its ground that its plain shapes must hold (the rest: their specks)
PLAIN_SATURATION = 0.55  # ShapesWorld's least saturated object is 0.58: a paler one (pink, light blue) is not plain


@on_ground
def plain_shapes(image: Image.Image, found: Ground) -> list[str]:
    """The shapes ("circle", "square", "triangle") of a picture on a one-colour background that shows nothing else:
    one or two whole filled shapes, each flat one of ShapesWorld's colours (hues.flat, PLAIN_SATURATION: not a pale
    shape, nor one filled with a gradient, which the models misnamed more often), at least as large as it draws them
    (turns.SMALL), each overlapping a circle, square or triangle of its area and centre, upright within
    turns.TURN_LIMIT, by PLAIN_MATCH, and holding PLAIN_SHARE of the pixels off the ground (nothing cut off by the
    picture's edge, no text); [] when it shows anything else; None (no opinion) on other backgrounds.

    What it is for: the detector flagged a fair drawing now and then (an outside tester's blue square 1-2 px from the
    edge of a pale-blue sheet, named right by every model: 6 of 6), and its notice, "no such shapes", was untrue of
    it. mmkit.domain.picture_readings passes a flagged picture that this reading finds plain."""
    from .hues import fill_colours, flat, known, two_colours, vivid
    from .turns import TURN_LIMIT, _read

    shapes = found.shapes
    if not 1 <= len(shapes) <= 2 or found.strokes:
        return []
    if sum(area for area, _, _ in shapes) < PLAIN_SHARE * int((found.labels > 0).sum()):
        return []  # parts off the edge, specks of text, a shape cut by the picture's edge
    out = []
    for j, ((_, i, sl), rgb) in enumerate(zip(shapes, fill_colours(found))):
        if (rgb is None or not vivid(rgb) or not known(rgb) or max(rgb) - min(rgb) < PLAIN_SATURATION * max(rgb)
                or found.share(sl) < SMALL or not flat(found, j) or two_colours(found, j)
                or _form_kind(found.labels[sl] == i, found.dist[sl])[0] is not None):
            return []
        read = _read(found.dist, found.labels, i, sl)
        if read is not None and read[2] >= PLAIN_MATCH and read[1] <= TURN_LIMIT:
            out.append(read[0])
        elif _disc_match(found.labels[sl] == i) >= PLAIN_MATCH:
            out.append("circle")
        else:
            return []
    return out


def _disc_match(own: np.ndarray) -> float:
    """Overlap (IoU) of a shape's mask (its box's window) with the disc of its area about its centre."""
    ys, xs = np.nonzero(own)
    if not len(xs):
        return 0.0
    r2 = len(xs) / np.pi
    yy, xx = np.mgrid[:own.shape[0], :own.shape[1]]
    disc = (xx - xs.mean()) ** 2 + (yy - ys.mean()) ** 2 <= r2
    return float((own & disc).sum() / max((own | disc).sum(), 1))
