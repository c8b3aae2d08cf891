"""Is a shape in a colour the bundled models know? ShapesWorld's objects are red, green and blue, each jittered
within its hue band (styles.object_colour: brightness x0.75-1.15, each channel +-18, so hues within 15, 22 and 16
degrees of red's, green's and blue's). A dark orange shape (255, 140, 0) passed the picture check on grey and
dark sheets (36 of 36 drawings; 14 of 24 on white and light grey), and the bundled models called it red without a
word; purple, yellow and cyan pictures were flagged by the detector more often.

odd_colours reads each shape of a picture on a one-colour background (turns.ground_shapes) and names those whose
colour lies outside the bands (HUE_MARGIN degrees beyond each band's widest jitter) or is too grey for any of them,
and those in a pale colour (pale: less saturated than ShapesWorld's least, but tinted).
Pictures on any other background get no opinion (None).
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .framing import STEP
from .styles import OBJECT_RGB
from .turns import Ground, on_ground

HUE_MARGIN = 7.0  # degrees beyond the widest hue jitter of ShapesWorld's colour that still count as that colour
MIN_SATURATION = 0.3  # ShapesWorld's least saturated object is 0.58; light green (144, 238, 144) is 0.39
MIN_VALUE = 0.2  # darker is black
MIN_CORE = 30  # pixels of a shape's fill (beyond its blended edge) needed to read its colour


def _bands() -> list[tuple[float, float]]:
    """(hue in degrees, how far from it the jittered colour goes) for each of ShapesWorld's object colours, measured
    on 4,000 draws of styles.object_colour."""
    from .styles import object_colour

    rng = np.random.default_rng(0)
    out = []
    for rgb in OBJECT_RGB:
        hue = colorsys.rgb_to_hsv(*(np.array(rgb) / 255))[0] * 360
        drawn = np.array([object_colour(rgb, rng) for _ in range(4000)]) / 255
        hues = np.array([colorsys.rgb_to_hsv(*c)[0] * 360 for c in drawn])
        out.append((hue, float(np.abs((hues - hue + 180) % 360 - 180).max())))
    return out


BANDS = _bands()  # red (0, 14.8), green (132.0, 22.2), blue (226.3, 16.3) on the draws above


@dataclass
class OddColour:
    """A shape whose colour the bundled models never saw."""

    name: str  # what to call the colour in a message: "orange", "yellow", "purple", "grey", ...
    rgb: tuple[int, int, int]  # the shape's median colour
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the picture's pixels, x1/y1 exclusive


def colour_name(rgb) -> str:
    """A plain name for a colour outside ShapesWorld's three: black, white, grey, brown, orange, yellow, pale red, ...

    A colour outside the bands (known(rgb) False) is never called plain red, green or blue: the notice that names
    it asks for red, green or blue shapes. It is named by the side of the band it lies on (_off_band_name:
    "yellow-green" below green's band, "sky blue" below blue's, "blue-violet" above it, ...)."""
    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))
    h *= 360
    if v < MIN_VALUE:
        return "black"
    if pale(rgb):
        return "pale " + colour_name(colorsys.hsv_to_rgb(h / 360, 0.9, 0.9) * np.array(255.0))
    if s < MIN_SATURATION:
        return "white" if v > 0.85 else "grey"
    if not known(rgb):
        return _off_band_name(h, v)
    for upto, name in ((15, "red"), (45, "orange"), (70, "yellow"), (100, "yellow-green"), (160, "green"),
                       (200, "cyan"), (250, "blue"), (310, "purple"), (345, "pink"), (360, "red")):
        if h < upto:
            return "brown" if name == "orange" and v < 0.6 else name
    return "red"


# Names of the hues outside the bands, by the side of a band they lie on (upper bound in degrees, name); a band's
# centre bounds the names on each side of it. The bundled captioner, shapes-clip and shapes-vilt-vqa called
# orange-red, orange, brown and pink shapes red, yellow-green and blue-green ones green, sky blue and blue-violet
# ones blue (2 shades x 3 PIL shapes each, on white; mmkit.domain_notices.COLOUR_CALLED); yellow, cyan and purple
# shapes got different ones from each model.
_OFF_BAND = ((26, "orange-red"), (45, "orange"), (78, "yellow"), ("green", "yellow-green"), (172, "blue-green"),
             (190, "cyan"), ("blue", "sky blue"), (280, "blue-violet"), (310, "purple"), (360, "pink"))


def _off_band_name(h: float, v: float) -> str:
    """The name of hue h (degrees; v the brightness) outside ShapesWorld's bands."""
    centre = dict(zip(("red", "green", "blue"), (hue for hue, _ in BANDS)))
    for upto, name in _OFF_BAND:
        if h < (centre[upto] if isinstance(upto, str) else upto):
            return "brown" if name in ("orange-red", "orange") and v < 0.6 else name
    return "pink"


def vivid(rgb) -> bool:
    """Whether a colour is a colour at all: not black, white or grey (MIN_SATURATION, MIN_VALUE)."""
    _, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))
    return s >= MIN_SATURATION and v >= MIN_VALUE


def known(rgb) -> bool:
    """Whether a colour lies in one of ShapesWorld's hue bands (with HUE_MARGIN), or is no colour at all (black,
    white, grey: the detector flags shapes so drawn, and photo and texture grounds leave grey pieces, in 15 and 10
    of 150 ShapesWorld scenes, that are no shapes)."""
    return not vivid(rgb) or bool(band_of(np.asarray([rgb], np.float64).clip(0, 255))[0] >= 0)


@on_ground
def odd_colours(image: Image.Image, found: Ground) -> list[OddColour]:
    """The shapes of a picture on a one-colour background whose colour the bundled models do not know; None (no
    opinion) when the background is not one colour. A shape's colour is the median, in each channel, of its fill:
    its pixels further than 2 * STEP from the ground. Black, white and grey shapes count on a coloured ground only (a
    white cross on a red flag; ShapesWorld draws none), as large as a shape: on other grounds they are left to the
    detector, since photo crops leave grey pieces on a ground that passes for one colour (21 of 300 scenes of the
    photo looks the detector passes), and a white shape on a coloured field got "green square" from shapes-clip and
    "zero" from shapes-vilt-vqa to "what color is the square?" with no notice (an outside tester, 4 of 10). So do
    those that hold a red, green or blue shape (holds_colour): a traffic light's housing with only its red lamp lit was
    captioned "a large red square above a large red circle" (3 of 3); 0 of 1,950 held-out ShapesWorld scenes (150 in
    each look) and 0 of 1,300 others (100 each, seed 9) read one, where counting any coloured pixels on a grey piece
    had read 4 (stars on photo crops, a shape touching a texture's black dot) and a coloured piece of any size 1 (a
    triangle's thick black outline)."""
    from .turns import SMALL

    field = vivid(found.colour)  # a flag's field: a white shape on it is a shape, not a photo's grey piece
    out = []
    for j, rgb in enumerate(fill_colours(found)):
        if rgb is None:  # too few pixels of its own fill to read (tiny shapes blend)
            continue
        sl = found.shapes[j][2]
        odd = not known(rgb) or (not vivid(rgb) and found.share(sl) >= SMALL and (field or holds_colour(found, j)))
        if odd and not two_colours(found, j):  # two touching shapes' median is a blend, no colour drawn
            out.append(OddColour(colour_name(rgb), rgb, found.box(sl)))
        elif vivid(rgb) and (part := off_band(found, j)) is not None:
            out.append(OddColour(colour_name(part), part, found.box(sl)))
        elif pale(rgb) and found.share(sl) >= SMALL and flat(found, j):
            out.append(OddColour(colour_name(rgb), rgb, found.box(sl)))
    return out


PALE = (0.12, 0.45)  # saturations of a pale shape: more tint than white or grey, less than ShapesWorld's least (0.58)


def pale(rgb) -> bool:
    """Whether a colour is a pale one (pink, light green, light blue): light (value 0.6 or more), with a tint between
    PALE's. An outside tester's pastel shapes were captioned wrong 23 of 43 times, 11 of those with no notice, and
    the others were told "no such shapes" though most showed plainly."""
    _, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))
    return v >= 0.6 and PALE[0] <= s < PALE[1]


FLAT = 0.9  # share of a flat shape's fill within STEP of its median colour (not a gradient, a hatching or a pattern)


def flat(found, j: int) -> bool:
    """Whether shape j of a ground reading is one flat colour: FLAT of its fill inside its edge (inner_fill, a
    sixteenth of its side) within STEP of its median colour. Not a photo's pale piece nor a gradient, which vary
    (mmkit.data.forms.plain_shapes asks it too)."""
    _, i, (rows, cols) = found.shapes[j]
    pixels = inner_fill(found, i, (rows, cols), max(2, min(rows.stop - rows.start, cols.stop - cols.start) // 16))
    near = np.abs(pixels.astype(np.int16) - np.asarray(fill_colours(found)[j], np.int16)).max(-1) <= STEP
    return bool(near.mean() >= FLAT) if len(near) else False


OFF_BAND = 0.25  # share of a shape's fill in a colour outside ShapesWorld's bands that is a part in another colour
PARTS_SIDE = 64  # a shape's parts are read on every k-th pixel, so that it is at most this many pixels across
PARTED = 32  # pixels of the reading's copy a shape's short side needs for its parts' colours to be read (a smaller
# one's blurred outline is much of it)
PAINTED = 0.6  # saturation a part in another colour needs: a colour drawn, not a photo's pale patch (ShapesWorld's
# least saturated object 0.58; a retina photo's optic disc (254, 200, 133) is 0.48)
EDGE = 2  # pixels of a shape's edge (on the reading's copy), or an eighth of its side, left out of that fill: blended
# with the ground's colour, and with a drawn outline (a dark outline blurred on a pink ground is purple)


def off_band(found, j: int) -> tuple[int, int, int] | None:
    """The median colour of the part of shape j's fill that is a colour outside ShapesWorld's bands (not black, white
    or grey, and saturated PAINTED or more), when that part is OFF_BAND of the fill or more, read inside its edge, on
    a shape PARTED pixels across or more; None otherwise. A shape's median colour is one of its parts' only when one
    colour fills most of it: a red disc overlapping an orange one, their overlap painted a third colour (an outside
    tester's card logo), had the median (247, 95, 27), a red, and got no notice. Most shapes are one colour: when
    under OFF_BAND of the fill, edge and all, lies further than STEP from its median colour, nothing more is read."""
    _, i, (rows, cols) = found.shapes[j]
    h, w = rows.stop - rows.start, cols.stop - cols.start
    if min(h, w) < PARTED:
        return None
    step = -(-max(h, w) // PARTS_SIDE)  # every step-th pixel: at most PARTS_SIDE across
    window = (slice(rows.start, rows.stop, step), slice(cols.start, cols.stop, step))
    fill = (found.labels[window] == i) & (found.dist[window] > 2 * STEP)
    far = fill & (np.abs(found.pixels[window].astype(np.int16) - np.asarray(fill_colours(found)[j], np.int16))
                  .max(-1) > STEP)  # not the shape's own colour
    if far.sum() < max(MIN_CORE, OFF_BAND * fill.sum()):  # one colour (most shapes): no part to read
        return None
    pixels = inner_fill(found, i, (rows, cols), -(-max(EDGE, min(h, w) // 8) // step), step)
    least = max(MIN_CORE, OFF_BAND * len(pixels))
    x = pixels.astype(np.int16)
    top = x.max(1)
    off = (band_of(pixels) < 0) & (top - x.min(1) >= MIN_SATURATION * top) & (top >= MIN_VALUE * 255)
    if off.sum() < least:
        return None
    part = np.median(pixels[off], 0)
    return tuple(int(v) for v in part) if part.max() - part.min() >= PAINTED * part.max() else None


def inner_fill(found, i: int, sl, edge: int, step: int = 1) -> np.ndarray:
    """The pixels (m, 3) of shape label i's fill, (rows, cols) slices sl of a ground reading, inside its edge: further
    than 2 * STEP from the ground and `edge` pixels or more from the shape's border (an edge blends with the ground,
    with a drawn outline, or rings after a resize), read on every step-th pixel."""
    from scipy import ndimage

    window = (slice(sl[0].start, sl[0].stop, step), slice(sl[1].start, sl[1].stop, step))
    inner = ndimage.minimum_filter(found.labels[window] == i, size=2 * edge + 1, mode="constant")  # (0 off the box)
    return found.pixels[window][inner & (found.dist[window] > 2 * STEP)]


HELD = (0.03, 0.4)  # share of a shape of no colour that the red, green or blue shape drawn inside it makes (more: it is
# that shape's outline, as ShapesWorld's outlined look draws it; a traffic light's lamp makes about a tenth)


def holds_colour(found, j: int) -> bool:
    """Whether shape j of a ground reading, itself of no colour, has a red, green or blue shape drawn inside it: one
    piece of those colours, making a share of its pixels within HELD (and MIN_CORE pixels or more), that the rest of
    it surrounds. A traffic light's housing with its lamps reads as one shape on the ground. Not a photo's grey piece
    with coloured specks (stars), a black dot that a shape touches from outside (a texture), nor a shape's thick black
    outline, whose median colour is black (ShapesWorld's outlined look on a photo crop)."""
    from scipy import ndimage

    from .turns import _EIGHT

    _, i, (rows, cols) = found.shapes[j]
    own = found.labels[rows, cols] == i
    coloured = np.zeros_like(own)
    coloured[own] = band_of(found.pixels[rows, cols][own]) >= 0
    parts, n = ndimage.label(coloured, _EIGHT)
    if not n:
        return False
    sizes = np.bincount(parts.ravel())[1:]
    k = int(sizes.argmax()) + 1
    area = int(own.sum())
    if not max(MIN_CORE, HELD[0] * area) <= sizes[k - 1] <= HELD[1] * area:
        return False
    inside = ndimage.binary_fill_holes(own & ~ndimage.binary_dilation(coloured, iterations=2))
    return bool(inside[parts == k].mean() >= 0.8)


def band_of(pixels: np.ndarray) -> np.ndarray:
    """(m,) int: for RGB pixels (m, 3), 0-255, 0, 1 or 2 for those in ShapesWorld's red, green or blue band (with
    HUE_MARGIN; known's test), -1 for the others (other hues, black, white, grey). A shape's pixels share few
    colours: uint8 pixels are read once per colour (a 160 px disc's 1,876 pixels in 70 us, against 250 us each)."""
    if pixels.dtype == np.uint8 and len(pixels) > 64:
        key = (pixels[:, 0].astype(np.int32) << 16) | (pixels[:, 1].astype(np.int32) << 8) | pixels[:, 2]
        colours, which = np.unique(key, return_inverse=True)
        if len(colours) < len(pixels) // 2:
            return _bands_of(np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], 1))[which.ravel()]
    return _bands_of(pixels)


def _bands_of(pixels: np.ndarray) -> np.ndarray:
    """band_of, reading every pixel."""
    x = pixels.astype(np.float64) / 255
    top, low = x.max(1), x.min(1)
    c = top - low
    safe = np.where(c > 0, c, 1)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    hue = np.where(top == r, ((g - b) / safe) % 6, np.where(top == g, (b - r) / safe + 2, (r - g) / safe + 4)) * 60
    out = np.full(len(x), -1, np.int8)
    colour = (c >= MIN_SATURATION * np.maximum(top, 1e-6)) & (top >= MIN_VALUE)
    for k, (centre, spread) in enumerate(BANDS):
        out[colour & (np.abs((hue - centre + 180) % 360 - 180) <= spread + HUE_MARGIN)] = k
    return out


def two_colours(found, j: int) -> bool:
    """Whether shape j of a ground reading is two shapes of ShapesWorld's colours that touch (two of its bands hold a
    quarter of its fill each): its median colour, and its outline, are then those of neither. A red and a green
    circle drawn side by side, anti-aliased, read as one shape on the ground, "a yellow shape" of a long form
    (an outside tester's pairs: 94 of 162 got both notices, every caption right)."""
    _, i, (rows, cols) = found.shapes[j]
    core = (found.labels[rows, cols] == i) & (found.dist[rows, cols] > 2 * STEP)
    counts = np.bincount(band_of(found.pixels[rows, cols][core]) + 1, minlength=4)[1:]  # red, green, blue
    return bool(np.sort(counts)[-2] >= 0.25 * max(int(core.sum()), 1))


def fill_colours(found) -> list[tuple[int, int, int] | None]:
    """Each shape's median fill colour of a turns.ground_shapes reading (_fill_medians), read once per reading."""
    if found.fills is None:
        found.fills = _fill_medians(found)
    return found.fills


def _fill_medians(found) -> list[tuple[int, int, int] | None]:
    """Each shape's median fill colour (as np.median gives it, truncated to integers), None with under MIN_CORE
    pixels of fill: all shapes at once, from one histogram per channel of the fills' pixels by shape."""
    n = len(found.shapes)
    if not n:
        return []
    window = found.window()
    which = found.index[found.labels[window]]  # 1 + each pixel's place in found.shapes, 0 off them
    core = (found.dist[window] > 2 * STEP) & (which > 0)  # the fills, not their blended edges
    who = which[core].astype(np.int64)  # (m,)
    counts = np.bincount(who, minlength=n + 1)[1:]  # (n,)
    if not counts.any():
        return [None] * n
    pixels = found.pixels[window][core]  # (m, 3) uint8
    medians = np.zeros((n, 3))
    ranks = np.stack([(counts - 1) // 2, counts // 2], 1)  # (n, 2) the middle pixels' ranks, as np.median takes them
    for c in range(3):  # each shape's histogram of the channel, then the levels at the middle ranks
        below = np.cumsum(np.bincount(who * 256 + pixels[:, c], minlength=(n + 1) * 256).reshape(n + 1, 256)[1:], 1)
        medians[:, c] = (below[:, None, :] > ranks[:, :, None]).argmax(2).mean(1)  # (n,)
    return [tuple(int(v) for v in medians[j]) if counts[j] >= MIN_CORE else None for j in range(n)]
