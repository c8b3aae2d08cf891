"""Is this picture a shapes scene? The cheap check a bundled model runs on its pictures first (mmkit.domain_words
checks the words it is given).

The bundled models only know ShapesWorld: red, green and blue circles, squares and triangles on some background.
Given a photo or a screenshot they still answer, confidently and wrongly. A tiny CNN (about 24k parameters on a
40 x 40 thumbnail, mmkit.domain_detector) scores whether a picture shows such shapes; where it does not, the task
emits `mmkit.OutOfDomainWarning` and still returns its result. A flagged picture gets a second look at its content,
cropped (second_look): a small shape on a big sheet is a few pixels in the detector's thumbnail; one still flagged is
read again as the bundled models see it, its one-colour background repainted (repainted_look). A picture that seems
to show more than two shapes (count_shapes) gets the warning too: the models learnt from scenes of one or two, and
answer 'two' to a count of three or four; so does one with a square or triangle turned more than the models know
(mmkit.data.turns.TURN_LIMIT, 16 degrees), a shape in a colour they never saw, or shapes all smaller than they were
drawn (shape_readings, on one-colour backgrounds: a square at 45 degrees is a circle to all six models).

A bundled model also gets a picture wider than 4:3 cropped around its content (fit_picture_at). A model fine-tuned
from a bundled one is checked as its base is, with the words fine-tuning taught it known
(mmkit.domain_notices.finetuned_from, which also writes what the notices say); it gets pictures as given, as it was
trained. Pretrained models are never checked; MMKIT_DOMAIN_CHECK=0 turns the checks off.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from .domain_detector import (CHANNELS, DETECTOR_DIR, SIDE, THUMBNAIL, ZOOM, _count, _pixels,  # noqa: F401
                              content_crop, count_shapes, detector_module, load_detector, second_look, shape_scores,
                              thumbnails)
from .domain_notices import (colour_notice, crowd_notice, finetuned_from, form_notice, grey_notice, picture_notice,
                             size_notice, small_notice, turned_notice, words_notice)
from .models import bundled_folder


def out_of_domain(images, pixels: np.ndarray | None = None, detector=None) -> list[bool]:
    """For each RGB PIL image: True when the detector finds no ShapesWorld-like shapes in it, at first sight, on
    a second look at its content (second_look), or read as a bundled model is given it (repainted_look). pixels:
    the images' thumbnails, when already made; detector: (module, threshold), the bundled one when None."""
    loaded = detector or load_detector()
    if loaded is None:
        return [False] * len(images)
    flags = second_look(images, [bool(s < loaded[1]) for s in shape_scores(images, loaded, pixels)], loaded)
    return repainted_look(images, flags, loaded)


def as_repainted(image):
    """The picture as fit_picture_at gives it a bundled model when it has a one-colour background: that background
    repainted in the plain grey, cropped to 4:3 around its content where that fits; None for any other picture
    (a photo stops at its edges, which cost little to read). The bundled captioner's padding to 4:3 is left out:
    a photo crop padded with its edge colour got repainted into blotches the detector passed."""
    from .data.framing import content_window, plain_background
    from .data.styles import TRAINED_ASPECT

    picture, done = plain_background(image)
    if not done:
        return None
    window = content_window(image, TRAINED_ASPECT)
    return picture.crop(window) if window is not None else picture


def repainted_look(images, flags: list[bool], detector) -> list[bool]:
    """The flags after reading each flagged picture again as the bundled models see it (as_repainted), with its
    own second look. A shape on a dark sheet of its own hue (a blue circle on navy) was flagged as given and named
    right by every bundled model, which gets it on grey: of 40 drawings of one or two shapes on navy, dark-green
    and maroon sheets 28 were flagged as given, 3 so (on black and white sheets 2 of 20, then none). Sheets the
    repaint leaves as they are (plain_background: shapes within 80 of a royal-blue, forest or crimson ground)
    stay flagged: 23 of 30, 25 before. Repainted, a sheet with no shapes or with text is grey with no shapes and
    still flagged (49 of 49); the held-out pictures it flags are flagged as often as before, and up to 6 points
    more of the held-out scenes pass (data/models/shapes-domain/README.md). Only flagged pictures with one-colour
    backgrounds are read again, and none while REPAINT is off."""
    which = [i for i, f in enumerate(flags) if f] if REPAINT else []
    seen = {i: p for i in which if (p := as_repainted(images[i])) is not None}
    if not seen:
        return list(flags)
    pictures = list(seen.values())
    again = second_look(pictures, [bool(s < detector[1]) for s in shape_scores(pictures, detector)], detector)
    out = list(flags)
    for i, flag in zip(seen, again):
        out[i] = flag
    return out


def is_bundled(spec) -> bool:
    """Whether a model spec is one of the bundled ShapesWorld models: by name, or by its folder in data/models."""
    return spec.source == "bundled" or (spec.source == "path" and bundled_folder(spec.repo) is not None)


PADDED_FAMILIES = ("blip-caption",)  # the bundled models fit_picture pads to TRAINED_ASPECT


def fit_picture(m, image):
    """The picture as the model is given it (fit_picture_at without the offset)."""
    return fit_picture_at(m, image)[0]


def fit_picture_at(m, image, repaint: bool = True):
    """(the picture as the model is given it, (x, y) of the given picture inside it).

    A bundled model gets a picture wider (or taller) than 4:3, the widest canvas the bundled models trained on,
    cropped along its long side to a 4:3 window around its content (what differs from its edge colour) when the
    content fits in one: the processors squeeze every picture into a square, and a shape squeezed out of its
    proportions was named wrong. On 810 drawings of one shape with PIL on sheets from square to 4:1, cropping
    lifted every bundled model against the picture as given: captions 0.80 -> 0.96 right, shapes-clip 0.72 ->
    0.84, shapes-align 0.82 -> 0.99, shapes-blip-vqa 0.70 -> 0.78, shapes-vilt-vqa 0.78 -> 0.82, shapes-blip-itm
    0.69 -> 0.81 (data/models/ROBUSTNESS_BOUND.md, `aspect`). The crop keeps the short side, so the shapes keep
    their size against it. When the content does not fit, the bundled captioner gets the picture padded to 4:3
    with its edge colour (0.80 -> 0.86 on those drawings), the other models the picture as it is (padding moved
    their scores by -0.05 to +0.04). Other models only get very thin pictures padded (fit_aspect). The offset is
    negative along a cropped side. A model fine-tuned from a bundled one gets pictures as other models do: it was
    fine-tuned on them as given (mmkit.tuning.losses hands them to the processor), not cropped or repainted.

    With `repaint` (the default; and while mmkit.domain.REPAINT is on), a bundled model then gets a one-colour
    background repainted in ShapesWorld's plain grey (mmkit.data.framing.plain_background): the plain look is the one the bundled models learnt
    best, and on dark backgrounds they named shapes far more often so (ROBUSTNESS_BOUND.md, "repainted").
    attention_maps draws its maps on the picture before this step, which has the same pixels' places.
    """
    from .data.framing import content_window, fit_aspect, pad_offset
    from .data.styles import TRAINED_ASPECT

    spec = getattr(m, "spec", None)
    if spec is None or not is_bundled(spec):
        fitted = fit_aspect(image)
        return fitted, pad_offset(image.size, fitted.size)
    window = content_window(image, TRAINED_ASPECT)
    if window is not None:
        fitted, offset = image.crop(window), (-window[0], -window[1])
    else:
        fitted = (fit_aspect(image, TRAINED_ASPECT, fill="border") if spec.family in PADDED_FAMILIES
                  else fit_aspect(image))
        offset = pad_offset(image.size, fitted.size)
    return (repainted(m, fitted)[0] if repaint else fitted), offset


REPAINT = True  # False gives the bundled models one-colour backgrounds as drawn (to compare; see fit_picture_at)


def repainted(m, image) -> tuple:
    """(the picture with its one-colour background repainted in the plain grey, True) for a bundled model while
    REPAINT is on (see fit_picture_at); (image, False) for other models and pictures."""
    from .data.framing import plain_background

    spec = getattr(m, "spec", None)
    return plain_background(image) if REPAINT and spec is not None and is_bundled(spec) else (image, False)


def checked(m) -> bool:
    """Whether the domain checks apply to a model: a bundled one, or one fine-tuned from a bundled one
    (finetuned_from), unless MMKIT_DOMAIN_CHECK=0."""
    import os

    spec = getattr(m, "spec", None)
    return (spec is not None and os.environ.get("MMKIT_DOMAIN_CHECK") != "0"
            and (is_bundled(spec) or finetuned_from(spec) is not None))


MOST_SHAPES = 2  # the most shapes a scene the bundled models learnt from holds (ShapesWorld's objects=(1, 2))
SMALLEST_CANVAS = 32  # pixels a side: ShapesWorld draws no smaller canvas (its held-out "tiny" look, 32-40 px)
# Below this many pixels a side a picture gets a notice: shapes-clip named 8 of 18 PIL shapes right at 8 px, 14 at 12,
# 13 at 16, 17 at 24 and 16 at 32 (on white and grey, downscaled from 256 px); the captioner 17, 15, 18, 18 and 18.
TINY_SIDE = 20


GREY_SPREAD = 12  # a picture whose pixels' channels all lie within this of each other has no colours


@dataclass
class GreyPicture:
    """A drawing with no colours (black, white and grey only): shapes as large as ShapesWorld's on a one-colour
    ground, in grey (text on a sheet, its letters small, keeps the detector's notice)."""


@dataclass
class TinyPicture:
    """A picture smaller than ShapesWorld draws (SMALLEST_CANVAS), or a drawing that small enlarged (pixel art,
    enlarged_from). Its notice is said under TINY_SIDE, where the bundled models misname more shapes, and from there up
    when the detector flags the picture (instead of "no such shapes": an outside tester's 20 and 24 px circles were
    named right and flagged)."""

    size: tuple[int, int]  # (width, height) in pixels, of the drawing before it was enlarged
    enlarged: tuple[int, int] | None = None  # the picture's own (width, height) when it is a small drawing enlarged


BLOCKY = 24  # a step between a pixel and the next larger than this, in some channel, is an edge of pixel art's blocks
MIN_STEPS = 6  # edges a blocky picture needs along each side: a lone square, drawn sharp, has two


def enlarged_from(image) -> tuple[int, int] | None:
    """The (width, height) of the small drawing a picture was enlarged from without smoothing (pixel art: each of its
    pixels a block of 3 or more), or None. An outside tester's circles and triangles drawn at 12-16 px and enlarged
    with NEAREST to 128-512 px were called squares by every bundled model, 14 of 16 times or more, with no notice
    (from 32 px: 0 of 24 wrong). Read from the places along a row and a column of the picture where its colour steps:
    in pixel art every run between two steps is a block or several, in a drawing at its own size an edge steps from
    one pixel to the next."""
    from PIL import Image

    rgb = image.convert("RGB") if image.mode != "RGB" else image
    w, h = rgb.size
    out = []
    for n, size, columns in ((w, (w, min(h, 64)), False), (h, (min(w, 64), h), True)):  # 64 rows, then 64 columns
        lines = np.asarray(rgb.resize(size, Image.NEAREST)).astype(np.int16)  # picked evenly
        if columns:
            lines = lines.transpose(1, 0, 2)  # (lines, along, 3)
        steps = np.nonzero(np.abs(lines[:, 1:] - lines[:, :-1]).max(0).max(-1) > BLOCKY)[0] + 1  # (the largest over
        # the lines first: numpy's largest over the 3 channels of each pixel is slow)
        if len(steps) < MIN_STEPS:
            return None
        runs = np.diff(steps)  # the runs between two steps, each a whole number of blocks
        if runs.min() < 3:
            return None
        block = float(runs[runs < 1.5 * runs.min()].mean())
        out.append(max(1, round(n / block)))
    return out[0], out[1]


def shape_readings(images) -> list[list]:
    """Per picture, what reading its shapes on a one-colour background finds (one pass, mmkit.data.turns.
    ground_shapes): the squares and triangles turned past mmkit.data.turns.TURN_LIMIT (ShapeTurn); the shapes in
    colours ShapesWorld never draws (mmkit.data.hues.OddColour); the coloured shapes that are no circle, square or
    triangle (mmkit.data.forms.OtherForm); the shapes smaller than ShapesWorld draws them, all of them or one beside
    a larger one (SmallShape); words beside the shapes (mmkit.data.turns.Words); a drawing in grey (GreyPicture); and,
    on any background, a picture smaller than ShapesWorld draws, or a drawing that small enlarged (TinyPicture).
    Pictures the detector flags are read too: a turned square or an orange shape that fills the picture is flagged,
    and its reading says why better than "no such shapes" (explained)."""
    return [found for found, _ in _readings(images)]


def _readings(images) -> list[tuple[list, int]]:
    """Per picture: (shape_readings' findings, how many shapes it shows by its one-colour ground when the colour
    count cannot see them all: its whole shapes when one is in another colour, or the coloured shapes drawn on a
    shape of no colour (mmkit.data.forms.nested_count); 0 otherwise and for other backgrounds)."""
    from .data.forms import nested_count, other_forms
    from .data.hues import OddColour, odd_colours
    from .data.turns import TURN_LIMIT, ground_shapes, small_beside, small_shapes, turned_shapes, words

    out = []
    for im in images:
        drawn = enlarged_from(im) if min(im.size) >= SMALLEST_CANVAS else None
        tiny = ([TinyPicture(im.size)] if min(im.size) < SMALLEST_CANVAS else
                [TinyPicture(drawn, im.size)] if drawn is not None and min(drawn) < SMALLEST_CANVAS else [])
        found = ground_shapes(im)
        if found is None:
            out.append((tiny, 0))
            continue
        sample = found.pixels[::4, ::4].astype(np.int16)  # enough to see a shape's colour
        if _drawn_shapes(found) and int((sample.max(-1) - sample.min(-1)).max()) <= GREY_SPREAD:
            out.append(([GreyPicture()] + tiny, 0))  # its shapes' forms may be right, their colours cannot be
            continue
        said = words(im, found) or []
        odd = _off_words(odd_colours(im, found) or [], said)
        read = ((turned_shapes(im, TURN_LIMIT, found) or []) + odd + (small_shapes(im, found) or []) +
                _off_words((small_beside(im, found) or []) + (other_forms(im, found) or []), said) + said + tiny)
        out.append((read, max(len(found.shapes) if any(isinstance(f, OddColour) for f in odd) else 0,
                              nested_count(found))))
    return out


def _off_words(found: list, said: list) -> list:
    """The findings (with a box) that do not lie within a row of letters (mmkit.data.turns.Words): a letter of a
    coloured title is no small shape, nor a shape in another colour."""
    def inside(box, row):
        return row[0] <= box[0] and row[1] <= box[1] and box[2] <= row[2] and box[3] <= row[3]

    return [f for f in found if not any(inside(f.box, w.box) for w in said)]


def _drawn_shapes(found) -> bool:
    """Whether a one-colour ground holds a shape as large as ShapesWorld draws them (not only letters and specks)."""
    from .data.turns import SMALL

    return any(found.share(sl) >= SMALL for _, _, sl in found.shapes)


def shape_counts(colour_counts, readings) -> list[int]:
    """Per picture, how many shapes it seems to show: count_shapes' count, which sees red, green and blue shapes
    only, or the count its one-colour ground gives when that sees more (_readings): all its whole shapes where one is
    in another colour, or the coloured shapes drawn on a shape of no colour, as a traffic light's lamps in their
    housing. Measured on 192 PIL drawings of one to four circles, squares and triangles in ShapesWorld's and other
    colours on four sheets at 96-400 px: a crowd notice on 48 of the 48 three-shape drawings (15 by colour alone;
    the detector flags 8 of them, whose other colours explain it, explained), 22 of 48 four-shape ones (the
    detector flags the other 26) and none of the 96 with one or two. Counting the other-coloured shapes on top of
    the colour count said "3 shapes" of 17 two-shape drawings: a dark orange is read as red too. Over ShapesWorld's
    held-out looks it adds a crowd notice to 3 of 60 texture scenes, which read a piece of the texture as a shape in
    another colour and so had a colour notice already. readings: _readings' pairs."""
    return [max(int(c), n) for c, (_, n) in zip(colour_counts, readings)]


def explained(flag: bool, found: list) -> bool:
    """Whether a picture the detector flags is better described by its shape readings (shape_readings) than by "no
    such shapes": a square or triangle turned too far, a shape in another colour, or a shape that is no circle,
    square or triangle, read on a one-colour ground, a drawing in grey, or a picture smaller than ShapesWorld draws,
    and not only small shapes (text and specks on a sheet read as small shapes)."""
    from .data.forms import OtherForm
    from .data.hues import OddColour
    from .data.turns import ShapeTurn, SmallShape, Words

    return (flag and any(isinstance(f, (ShapeTurn, OddColour, OtherForm, TinyPicture, GreyPicture, Words))
                         for f in found)
            and not any(isinstance(f, SmallShape) and not f.beside for f in found))


_CALLER_CHECKED = ContextVar("mmkit_pictures_checked_by_caller", default=False)


@contextmanager
def pictures_checked():
    """Within it, task functions leave out their picture check (words are still checked): the caller has checked
    the pictures it made these from. search_video scores each frame's four masked halves; a half that masks the
    frame's one shape away is not a picture given without shapes, and was warned about as one."""
    token = _CALLER_CHECKED.set(True)
    try:
        yield
    finally:
        _CALLER_CHECKED.reset(token)


def picture_readings(m, images) -> tuple[list[bool], list[int], list[list]]:
    """(per-image out-of-domain flags, per-image shape counts, per-image readings of the shapes: turned, in other
    colours or small (shape_readings)) of the pictures a bundled model is given; nothing for models that are not
    checked, or inside pictures_checked()."""
    if not checked(m) or not images or _CALLER_CHECKED.get():
        return [False] * len(images), [0] * len(images), [[] for _ in images]
    net = (load_detector() or (None,))[0]
    pixels = _pixels(images, net.side, net.thumbnail) if net else _pixels(images, SIDE, THUMBNAIL)  # read once
    flags, read = out_of_domain(images, pixels), _readings(images)
    shapes = [found for found, _ in read]
    return plainly_drawn(images, flags, shapes), shape_counts(_count(pixels), read), shapes


def plainly_drawn(images, flags: list[bool], shapes: list[list]) -> list[bool]:
    """The flags after a last look at each flagged picture whose shapes' readings found nothing: one that shows
    only one or two plain circles, squares or triangles in ShapesWorld's colours on a one-colour background
    (mmkit.data.forms.plain_shapes) passes. The detector flagged such drawings now and then and said "no such
    shapes" of them: an outside tester's blue square 1-2 px from the edge of a pale-blue sheet, named right by every
    model. shapes: shape_readings' findings."""
    from .data.forms import plain_shapes

    return [bool(f and (found or not plain_shapes(im))) for im, f, found in zip(images, flags, shapes)]


def reading_notices(spec, flags: list[bool], counts: list[int], task: str = "result",
                    names: list[str] | None = None, shapes: list[list] | None = None) -> list[str]:
    """The messages a set of pictures' readings (picture_readings) give: one about those the detector flags, one
    about those that seem to show more than MOST_SHAPES shapes, one about those with a shape turned further than
    the models learnt, one about those with a shape that is no circle, square or triangle, one about those with
    small shapes, one about drawings in grey, one about words beside the shapes, one about pictures smaller than
    ShapesWorld draws, one about those with a shape in another colour (shapes: shape_readings). A flagged picture's
    readings and count are said instead of the detector's "no such shapes" only when its readings explain it
    (explained). spec: the model's ModelSpec, or
    the Loaded model (which names the words a fine-tune still in memory was taught)."""
    from .data.forms import OtherForm
    from .data.hues import OddColour
    from .data.turns import ShapeTurn, SmallShape, Words

    shapes = shapes or [[] for _ in flags]
    why = [explained(f, found) for f, found in zip(flags, shapes)]  # flagged, and the readings say why
    read = [not f or w for f, w in zip(flags, why)]  # the pictures whose readings (and count) are said
    n = len(flags)

    def found_as(kind) -> tuple[list[int], list[list]]:  # the pictures said to show `kind`, and theirs
        per = [[f for f in found if isinstance(f, kind)] for found in shapes]
        which = [i for i, p in enumerate(per) if p and read[i]]
        return which, [per[i] for i in which]

    said = []
    if any(f and not w for f, w in zip(flags, why)):
        said.append(picture_notice(spec, [i for i, (f, w) in enumerate(zip(flags, why)) if f and not w], n, task,
                                   names))
    crowded = [i for i, c in enumerate(counts) if read[i] and c > MOST_SHAPES]
    if crowded:
        said.append(crowd_notice(spec, crowded, [counts[i] for i in crowded], n, task, names))
    for kind, notice in ((ShapeTurn, turned_notice), (OtherForm, form_notice)):
        which, found = found_as(kind)
        if which:
            said.append(notice(spec, which, found, n, task, names))
    small, found = found_as(SmallShape)
    if small:
        said.append(small_notice(spec, small, n, task, names, beside=all(f.beside for f in sum(found, []))))
    grey = found_as(GreyPicture)[0]
    if grey:
        said.append(grey_notice(spec, grey, n, task, names))
    lettered = found_as(Words)[0]
    if lettered:
        said.append(words_notice(spec, lettered, n, task, names))
    which, tiny = found_as(TinyPicture)  # under TINY_SIDE always; from it to SMALLEST_CANVAS when the detector flags it
    keep = [k for k, (i, t) in enumerate(zip(which, tiny)) if min(t[0].size) < TINY_SIDE or flags[i]]
    which, tiny = [which[k] for k in keep], [tiny[k] for k in keep]
    if which:
        said.append(size_notice(spec, which, [t[0].size for t in tiny], n, task, names, [t[0].enlarged for t in tiny]))
    which, odd = found_as(OddColour)
    if which and finetuned_from(spec) is None:  # a fine-tune may have learnt the colour (notebook 13: orange)
        said.append(colour_notice(spec, which, odd, n, task, names))
    return said


def picture_findings(m, images, task: str = "result") -> tuple[list[bool], list[str], list[list[str]]]:
    """What a bundled model's pictures get said of them: (per-image out-of-domain flags, the batch's messages,
    each picture's own one-picture messages). Pictures the detector flags are not counted."""
    flags, counts, shapes = picture_readings(m, images)
    own = [reading_notices(m, [f], [c], task, shapes=[t]) for f, c, t in zip(flags, counts, shapes)]  # [] if none
    return flags, reading_notices(m, flags, counts, task, shapes=shapes), own


def check(m, images, task: str = "result") -> list[bool]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is given pictures with no ShapesWorld shapes, when it
    is given pictures that seem to show more shapes than its scenes held (count_shapes), and when a square or
    triangle seems turned further than its scenes turn them, and when a shape is in a colour they never drew
    (shape_readings).

    Args:
        m: the Loaded model; only bundled models (and fine-tunes of them) are checked.
        images: the RGB PIL images the task is about to run on.
        task: what the model returns, for the message ("caption", "answer", ...).
    Returns: the per-image out-of-domain flags (all False for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    flags, counts, shapes = picture_readings(m, images)  # each picture's own messages (picture_findings): not here
    for message in reading_notices(m, flags, counts, task, shapes=shapes):
        warn(message, OutOfDomainWarning)
    return flags


def notices_per_image(m, images, task: str, run):
    """Run a task over a batch of pictures and say which of its out-of-domain notices concern which picture.

    A notice about the words (a question, labels) concerns every picture; a notice about the pictures becomes
    a one-picture notice on each picture the detector flags (or that seems to show too many shapes), so a row of a
    table or a line of the CLI never carries another picture's index. A batch without notices costs nothing extra;
    one with notices costs one more detector pass and count.

    Args:
        m: the Loaded model.
        images: the RGB PIL images `run` works on.
        task: what the model returns, for the message ("caption", "answer", ...).
        run: a function of no arguments that runs the task on the batch and returns its result.
    Returns: (what `run` returned, one list of notice messages per picture).
    """
    from .notices import capture_notices

    with capture_notices() as said:
        result = run()
    if not said:
        return result, [[] for _ in images]
    if len(images) == 1:
        return result, [list(said)]
    _, pictures, own = picture_findings(m, images, task)  # the batch's notices about its pictures, and each one's
    shared = [n for n in said if n not in pictures]  # about the words: every picture's
    return result, [mine + shared for mine in own]
