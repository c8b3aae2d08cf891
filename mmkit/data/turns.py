"""Is a shape turned further than the bundled models know (or smaller than ShapesWorld draws them: small_shapes)? They
learnt upright squares and apex-up triangles, a few turned by up to 20 degrees (styles.make_look); a square at 45
degrees (a diamond) they call a circle, a triangle pointing down they misname, and most shapes turned past about
15 degrees they misname already. turned_shapes reads each square and triangle on a one-colour background and says
how far it is turned; turned_past says whether any is turned past TURN_LIMIT.

The method: the pixels far from the background's colour (framing.STEP) are grouped into connected shapes; along
each shape's edge the gradient directions theta of its soft mask, weighted by their strength, give the
resultants |mean exp(4i theta)| (near 1 for a square: its four sides are 90 degrees apart) and |mean exp(3i theta)|
(near 1 for a triangle), both near 0 for a circle; their argument gives the turn. A shape counts only when it
covers the square or triangle so turned well (MIN_MATCH). Pictures on any other background get no opinion (None).

Where: ShapesWorld turns shapes in half of its looks' scenes, by at most 5 to 20 degrees a look (so only about 2% of
those scenes by more than 15), and the bundled models learnt little past 10: on 1,194 held-out one-shape scenes in
the one-colour looks the captioner named a square or triangle turned 0-5 degrees right 0.99 of the time, 10-15
degrees 0.91 and 15-20 degrees 0.88, shapes-clip 0.98, 0.74 and 0.65. An outside tester's PIL drawings of squares
were named right by the six models 26 of 36 times at 15 degrees, 13 at 17.5, 4 at 20 and 0 at 25; the limit was
25 degrees until then and said nothing of them. So TURN_LIMIT is 16: 0 of 80 drawings turned 15 degrees (48-800 px,
hard and anti-aliased, 20% JPEG, white, grey and dark sheets) are flagged and 80 of 80 turned 17.5, the reading
within 0.5 degrees of the drawn turn for 90% of them. Of 2,100 held-out ShapesWorld scenes (300 each of plain, light,
dark, solid, sketch, tiny, big) 15 are flagged (0.7%), each with a shape read as turned 16-20 degrees.

Measured with the limit at 25 degrees: on 1,000 PIL drawings (64-1000 px; white, black, grey and coloured sheets;
hard and anti-aliased edges; 30% JPEG) 97% of the squares and triangles turned past it were flagged (the misses:
shapes under ~17 px, and turns within a degree of the limit), none of 376 circles; the turn read is within 1.2
degrees of the drawn one for 95% of shapes of 20 px or more. No shape was read on the sample photos or 520 crops of
ShapesWorld's photos. A 64 px picture costs about 0.5 ms, a 1000 px one about 5 ms (CPU time), a picture on another
background 0.2 ms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .framing import STEP, _distance, distance_array, edge_ground, edges_of, ground_colour, ground_varies

TURN_LIMIT = 16.0  # degrees: the bundled models misname most shapes turned further (see the module docstring)
WORK_SIDE = 256  # pictures are read on a copy at most this many pixels long
NUMPY_PIXELS = 128 * 128  # pictures up to this many pixels are read with numpy, larger ones with PIL
MIN_SIDE = 6  # a shape less than this many pixels across (on that copy, sqrt of its area) is too small to read
MIN_RESULTANT = 0.45  # |mean exp(4i theta)| (square) or |mean exp(3i theta)| (triangle) a shape needs
MIN_MATCH = 0.75  # overlap (intersection over union) of the shape with the square or triangle it is read as
MIN_FILL = 0.3  # share of its box a shape must fill (a square or triangle, at any turn, fills 0.45 or more)
MAX_SHAPES = 8  # the largest this many shapes of a picture are read
SMALL = 0.135  # a shape's longest side under this share of the picture's short side is smaller than ShapesWorld draws
SYMMETRY = {"square": 90.0, "triangle": 120.0}  # degrees after which each shape looks the same again


@dataclass
class ShapeTurn:
    """One square or triangle found in a picture."""

    shape: str  # "square" | "triangle"
    turn: float  # degrees from upright (triangles apex up), folded by the symmetry: square 0-45, triangle 0-60
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the picture's pixels, x1/y1 exclusive
    match: float  # overlap (IoU) of the shape with the square or triangle so turned, 0-1
    resultant: float  # |mean exp(4i theta)| for a square, |mean exp(3i theta)| for a triangle, 0-1


@dataclass
class Ground:
    """The shapes of a picture on a one-colour background, read once (ground_shapes) for turned_shapes,
    small_shapes and mmkit.data.hues.odd_colours."""

    pixels: np.ndarray  # (h, w, 3) uint8: the picture, at most WORK_SIDE long
    scale: tuple[float, float]  # (sx, sy): the picture's pixels per pixel of that copy
    dist: np.ndarray  # (h, w) uint8: each pixel's largest channel difference from the ground's colour
    labels: np.ndarray  # (h, w) int32: the connected shapes (pixels further than STEP from the ground), 0 the ground
    shapes: list  # the largest MAX_SHAPES whole shapes, largest first: (area, label, (rows, cols) slices)
    index: np.ndarray  # (labels + 1,) uint8: 1 + the place in `shapes` of each label's shape, 0 for the others
    strokes: list = field(default_factory=list)  # outlines, lines and letters as large as a shape, as `shapes` lists
    colour: tuple = (240, 240, 240)  # the ground's colour (the median of the picture's edge)
    fills: list | None = field(default=None, repr=False)  # each shape's fill colour, once read (hues.fill_colours)
    pieces: list = field(default_factory=list, repr=False)  # (rows, cols) slices of every whole part under SMALL

    def box(self, sl) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in the picture's pixels (x1/y1 exclusive) of (rows, cols) slices of the copy."""
        (rows, cols), (sx, sy) = sl, self.scale
        return (int(cols.start * sx), int(rows.start * sy), int(np.ceil(cols.stop * sx)), int(np.ceil(rows.stop * sy)))

    def share(self, sl) -> float:
        """The longest side of (rows, cols) slices of the copy over the copy's short side (SMALL's measure)."""
        rows, cols = sl
        return max(rows.stop - rows.start, cols.stop - cols.start) / min(self.labels.shape)

    def window(self) -> tuple[slice, slice]:
        """The (rows, cols) slices of the copy around all of `shapes`."""
        rows, cols = zip(*(sl for _, _, sl in self.shapes))
        return (slice(min(r.start for r in rows), max(r.stop for r in rows)),
                slice(min(c.start for c in cols), max(c.stop for c in cols)))


def turned_shapes(image: Image.Image, past: float | None = None, found: Ground | None = None) -> list[ShapeTurn] | None:
    """The squares and triangles of a picture on a one-colour background, with their turns; None (no opinion) when
    the background is not one colour (framing.plain_background's test).

    Args:
        image: a PIL image (any mode; read as RGB).
        past: only the shapes turned more than this many degrees (folded); the others are not checked against the
            ideal shape, which is most of the cost when a picture's shapes are upright.
        found: ground_shapes(image), when already read.
    """
    found = ground_shapes(image) if found is None else found
    if found is None:
        return None
    out = []
    for _, i, sl in found.shapes:
        read = _read(found.dist, found.labels, i, sl, past)
        if read is not None:
            shape, turn, match, r = read
            out.append(ShapeTurn(shape, round(float(turn), 1), found.box(sl), round(float(match), 3),
                                 round(float(r), 3)))
    return out


_EIGHT = np.ones((3, 3), bool)  # 8-connected


def ground_shapes(image: Image.Image) -> Ground | None:
    """The shapes of a picture on a one-colour background (Ground); None when the background is not one colour
    (framing.plain_background's tests). Shapes touching the edge and specks are left out; strokes (filling less
    than MIN_FILL of their box: outlines, lines, letters) are listed apart when as large as a shape (SMALL)."""
    from scipy import ndimage

    rgb = image.convert("RGB") if image.mode != "RGB" else image
    w, h = rgb.size
    if w * h <= NUMPY_PIXELS:  # numpy's calls: fewer, and faster on small pictures than PIL's
        a = np.asarray(rgb)  # (h, w, 3)
        fill = edge_ground(edges_of(a))
        if fill is None:
            return None
        dist = distance_array(a, fill)  # (h, w) uint8
        counts = np.bincount(dist.ravel(), minlength=256)
    else:
        fill = ground_colour(image)
        if fill is None:
            return None
        k = min(1.0, WORK_SIDE / max(w, h))
        small = rgb if k == 1 else rgb.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BOX, reducing_gap=2.0)
        far = _distance(small, fill)
        a, dist, counts = np.asarray(small), np.asarray(far), far.histogram()
    if ground_varies(counts):  # not shapes on a flat ground
        return None
    labels, found = ndimage.label(dist > STEP, _EIGHT)
    shapes, strokes, pieces = [], [], []
    short = min(a.shape[:2])
    for area, i, (rows, cols), filled in whole_parts(labels, found):
        if max(rows.stop - rows.start, cols.stop - cols.start) < SMALL * short:
            pieces.append((rows, cols))  # a letter, a speck of a photo, or a shape smaller than ShapesWorld's
        if filled:
            shapes.append((area, i, (rows, cols)))
        elif max(rows.stop - rows.start, cols.stop - cols.start) >= SMALL * short:  # a stroke or letter, shape-sized
            strokes.append((area, i, (rows, cols)))
    shapes = sorted(shapes, key=lambda c: -c[0])[:MAX_SHAPES]
    index = np.zeros(found + 1, np.uint8)
    index[[i for _, i, _ in shapes]] = np.arange(1, len(shapes) + 1)
    return Ground(a, (w / a.shape[1], h / a.shape[0]), dist, labels, shapes, index,
                  sorted(strokes, key=lambda c: -c[0])[:MAX_SHAPES], tuple(int(v) for v in fill), pieces=pieces)


def whole_parts(labels: np.ndarray, found: int) -> list[tuple[int, int, tuple[slice, slice], bool]]:
    """(area, label, (rows, cols) slices, whether it fills MIN_FILL of its box) of each of ndimage.label's `found`
    parts that is no speck (MIN_SIDE) and does not run off the picture: a whole shape when it fills its box, else a
    stroke or letter."""
    from scipy import ndimage

    areas = np.bincount(labels.ravel(), minlength=found + 1)  # (found + 1,) pixels of each part, 0 the rest
    boxes = ndimage.find_objects(labels)
    h, w = labels.shape
    out = []
    for i in np.nonzero(areas[1:] >= MIN_SIDE ** 2 / 2)[0] + 1:  # no specks
        rows, cols = boxes[i - 1]
        if rows.start == 0 or cols.start == 0 or rows.stop == h or cols.stop == w:
            continue  # runs off the picture: not a whole shape
        filled = areas[i] >= MIN_FILL * (rows.stop - rows.start) * (cols.stop - cols.start)
        out.append((int(areas[i]), int(i), (rows, cols), bool(filled)))
    return out


def on_ground(read):
    """Make read(image, found, ...) a reading of a picture on a one-colour background: read(image, found=None, ...)
    reads the picture's ground once (ground_shapes) when `found` is not given, and gives None (no opinion) on other
    backgrounds. image: a PIL image (any mode); found: ground_shapes(image), when already read."""
    from functools import wraps

    @wraps(read)
    def reading(image: Image.Image, found: Ground | None = None, *args, **kwargs):
        found = ground_shapes(image) if found is None else found
        return None if found is None else read(image, found, *args, **kwargs)

    return reading


@dataclass
class SmallShape:
    """A shape smaller, against its picture, than any ShapesWorld draws."""

    share: float  # its longest side over the picture's short side (ShapesWorld's: 0.147 at least, 0.24 typical)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the picture's pixels, x1/y1 exclusive
    beside: bool = False  # beside a shape of ShapesWorld's sizes (small_beside), not one of a picture's all small


@on_ground
def small_beside(image: Image.Image, found: Ground) -> list[SmallShape]:
    """The small shapes in ShapesWorld's colours beside a shape of its sizes, on a one-colour background: a small
    red, green or blue shape (under SMALL) where another shape is SMALL or larger; None (no opinion) on other
    backgrounds. The bundled captioner left out or misnamed the small one of 24 of 54 PIL drawings of a shape of
    0.25-0.35 of the picture beside one of 0.06-0.12 (96-400 px; white, grey and dark sheets). Only shapes in those
    colours count, since photo crops leave grey and brown pieces on a ground that passes for one colour: 5 of 1,040
    ShapesWorld scenes (80 per look, all on the photo looks) read one, and none of those in its one-colour looks."""
    from .hues import fill_colours, known, vivid

    shares = [found.share(sl) for _, _, sl in found.shapes]
    if not any(share >= SMALL for share in shares):
        return []
    small = [SmallShape(round(share, 3), found.box(sl), beside=True)
             for share, (_, i, sl), rgb in zip(shares, found.shapes, fill_colours(found))
             if share < SMALL and rgb is not None and vivid(rgb) and known(rgb) and not _enclosed(found, i)]
    return small


def _enclosed(found: Ground, i: int) -> bool:
    """Whether shape label i lies in a hole of another shape (the inside of a letter O on a sign, not a shape)."""
    from scipy import ndimage

    (rows, cols), = ndimage.find_objects((found.labels == i).astype(np.int8))
    for _, j, (r, c) in found.shapes:
        if j != i and r.start <= rows.start and rows.stop <= r.stop and c.start <= cols.start and cols.stop <= c.stop:
            if ndimage.binary_fill_holes(found.labels[r, c] == j)[rows.start - r.start, cols.start - c.start]:
                return True
    return False


LETTERS = 4  # small parts side by side in a row that make a word (a title, a label)


@dataclass
class Words:
    """A row of letters beside a picture's shapes: a title, a label."""

    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the picture's pixels, x1/y1 exclusive
    letters: int  # the parts read as its letters


@on_ground
def words(image: Image.Image, found: Ground) -> list[Words]:
    """The rows of letters on a one-colour background that also shows a shape of ShapesWorld's sizes: LETTERS small
    parts or more (turns.Ground.pieces) of like heights on one line, each at most one of their heights from the next,
    and of varied sizes (_varied); [] with none, or with no such shape (a page of text is the detector's: "no such
    shapes"); None (no opinion) on other backgrounds. Letters under about MIN_SIDE pixels tall on the reading's copy
    (at most WORK_SIDE long) are specks, not read. A third outside tester's slides with a black title above one
    shape were captioned with a made-up second shape 16 of 52 times, with no notice, and a coloured title was told it
    was a small shape."""
    if not any(found.share(sl) >= SMALL for _, _, sl in found.shapes) or len(found.pieces) < LETTERS:
        return []
    boxes = sorted(((c.start, r.start, c.stop, r.stop) for r, c in found.pieces), key=lambda b: (b[1] + b[3], b[0]))
    out, used = [], set()
    for k, (_, y0, _, y1) in enumerate(boxes):
        if k in used:
            continue
        h, mid = y1 - y0, (y0 + y1) / 2
        line = [j for j, b in enumerate(boxes) if j not in used and abs((b[1] + b[3]) / 2 - mid) <= 0.5 * max(h, 2)
                and 1 / 3 <= (b[3] - b[1]) / max(h, 1) <= 3]
        line.sort(key=lambda j: boxes[j][0])
        run = [line[0]] if line else []
        for j in line[1:] + [None]:  # split the line where two letters are further apart than a letter's height
            if j is not None and boxes[j][0] - boxes[run[-1]][2] <= max(h, 2):
                run.append(j)
                continue
            if len(run) >= LETTERS and _varied([boxes[i] for i in run]):
                used.update(run)
                xs0, ys0, xs1, ys1 = zip(*(boxes[i] for i in run))
                sx, sy = found.scale
                out.append(Words((int(min(xs0) * sx), int(min(ys0) * sy), int(np.ceil(max(xs1) * sx)),
                                  int(np.ceil(max(ys1) * sy))), len(run)))
            run = [j] if j is not None else []
    return out


VARIED = 0.15  # the spread (standard deviation over mean) of letters' widths or heights: a texture's dots have none


def _varied(boxes: list) -> bool:
    """Whether a row of parts' boxes (x0, y0, x1, y1) differ in width or height as a word's letters do (an 'E', an 'x',
    an 'l'), not alike as the dots of a pattern or a texture."""
    sizes = np.array([(b[2] - b[0], b[3] - b[1]) for b in boxes], float)
    return bool((sizes.std(0) / np.maximum(sizes.mean(0), 1)).max() >= VARIED)


@on_ground
def small_shapes(image: Image.Image, found: Ground, below: float = SMALL) -> list[SmallShape]:
    """The shapes of a picture on a one-colour background when all of them are small: their longest side under
    `below` of the picture's short side ([] when one is larger, or an outline or line is: specks beside a shape are
    no small shapes, nor is the mark inside an outlined warning sign); None
    (no opinion) on other backgrounds. ShapesWorld's shapes are 0.147 of it at least (400 scenes of
    the plain, tiny, big and light looks; none of 400 scenes in each one-colour look, nor of 150 in each other look,
    is flagged); the bundled captioner named one shape drawn with PIL right 0.11 of the
    time at 0.06 of a 128 px sheet, 0.72 at 0.10, 0.89 at 0.12 and always from 0.15 (18 drawings each)."""
    if found.strokes:  # an outline or a line as large as a shape (a sign, a chart's axes): the shapes are not all small
        return []
    out = []
    for _, _, sl in found.shapes:
        share = found.share(sl)
        if share >= below:
            return []
        out.append(SmallShape(round(share, 3), found.box(sl)))
    return out


def turned_past(image: Image.Image, limit: float = TURN_LIMIT) -> bool:
    """True when some square or triangle of the picture is turned more than `limit` degrees (turned_shapes).

    Args:
        image: a PIL image.
        limit: degrees, folded as turned_shapes folds them (at most 45 tells of squares, at most 60 of triangles).
    """
    return bool(turned_shapes(image, limit))


def _read(dist: np.ndarray, labels: np.ndarray, i: int, sl, past: float | None = None):
    """(shape, folded turn, match, resultant) of component i of `labels`, or None when it is no clear square or
    triangle (or, with `past`, is turned `past` degrees or less)."""
    from scipy import ndimage

    pad = 3
    H, W = dist.shape
    y0, y1 = max(0, sl[0].start - pad), min(H, sl[0].stop + pad)
    x0, x1 = max(0, sl[1].start - pad), min(W, sl[1].stop + pad)
    d = dist[y0:y1, x0:x1].astype(np.float32)  # (h, w)
    lab = labels[y0:y1, x0:x1]
    own = lab == i
    full = float(np.median(d[own]))  # the shape's own distance from the ground: full coverage
    soft = np.clip((d - STEP / 4) / max(full - STEP / 4, 1.0), 0, 1)  # (h, w) coverage, anti-aliased edges kept
    soft[(lab != 0) & ~own] = 0  # another shape's pixels
    area = float(soft.sum())
    if area < MIN_SIDE ** 2:
        return None
    blurred = ndimage.gaussian_filter(soft, 0.8)
    gx, gy = ndimage.sobel(blurred, 1), ndimage.sobel(blurred, 0)
    z = (gx + 1j * gy).ravel()  # inward gradients
    mag = np.abs(z)
    keep = mag > 1e-3 * mag.max()
    z, mag = z[keep], mag[keep]
    u = z / mag  # unit directions
    u2 = u * u  # (products: complex powers take twice as long)
    s4 = np.sum(mag * u2 * u2) / mag.sum()
    s3 = np.sum(mag * u2 * u) / mag.sum()
    if max(abs(s4), abs(s3)) < MIN_RESULTANT:
        return None
    if abs(s4) >= abs(s3):  # upright square: inward normals at 0, 90, 180, 270 degrees, 4 theta = 0
        shape, r, signed = "square", abs(s4), np.degrees(np.angle(s4)) / 4
    else:  # apex-up triangle: its base's inward normal points up (-90 degrees), 3 theta = 90
        shape, r = "triangle", abs(s3)
        signed = (np.degrees(np.angle(s3)) - 90) / 3
    half = SYMMETRY[shape] / 2
    signed = (signed + half) % SYMMETRY[shape] - half  # in [-half, half)
    if past is not None and abs(signed) <= past:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1]
    centre = (float((soft * xs).sum() / area), float((soft * ys).sum() / area))
    match = _match(soft, shape, signed, centre, area, (x0, y0))
    if match < MIN_MATCH:
        return None
    return shape, abs(signed), match, r


def _match(soft: np.ndarray, shape: str, angle: float, centre, area: float, origin) -> float:
    """Overlap (IoU) of a soft mask with the square or triangle (ShapesWorld's or an equilateral one, the better) of
    the same area and centre, turned by `angle` degrees."""
    from .styles import shape_alpha

    h, w = soft.shape
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    if shape == "square":
        s = np.sqrt(area) / 2
        outlines = [np.array([[-s, -s], [s, -s], [s, s], [-s, s]])]
    else:
        b = np.sqrt(2 * area)  # ShapesWorld's triangle: base and height b
        e = np.sqrt(4 * area / np.sqrt(3))  # an equilateral one: side e
        outlines = [np.array([[0, -b / 2], [-b / 2, b / 2], [b / 2, b / 2]]),
                    np.array([[0, -e / np.sqrt(3)], [-e / 2, e / (2 * np.sqrt(3))], [e / 2, e / (2 * np.sqrt(3))]])]
        outlines = [p - p.mean(0) for p in outlines]  # centroid at 0
    best = 0.0
    for pts in outlines:
        pts = pts @ rot.T + np.subtract(centre, origin)
        ideal = shape_alpha([tuple(p) for p in pts], w, h, smooth=True)  # (h, w) coverage
        best = max(best, float(np.minimum(soft, ideal).sum() / max(np.maximum(soft, ideal).sum(), 1e-6)))
    return best
