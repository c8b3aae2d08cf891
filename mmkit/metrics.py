"""Metrics: retrieval R@K, VQA accuracy, exact match, ROC AUC, and COCO caption scores.

Caption scores come from pycocoevalcap (the COCO caption evaluation code), not re-implementations.
METEOR and SPICE run Java programs that pycocoevalcap ships; when Java (or SPICE's Stanford CoreNLP
models) is missing they raise `MetricUnavailable`, and `caption_scores` skips them with a warning.

Ties count as if broken at random, everywhere: in R@K and mean rank an item tied with the right one is ahead of it
half the time (a model whose similarities are all equal scores chance), and in ROC AUC a tie counts 1/2.
NaN scores are refused (InputError naming where), as scikit-learn does: a NaN cannot be ranked.
"""
from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import InputError


def _as_numpy(sim) -> np.ndarray:
    if hasattr(sim, "detach"):
        sim = sim.detach().float().cpu().numpy()
    a = np.asarray(sim, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] > a.shape[1]:
        raise InputError(f"sim must be a (queries, items) matrix with queries <= items, got shape {a.shape}")
    nan = np.argwhere(np.isnan(a))
    if len(nan):
        r, c = nan[0]
        raise InputError(f"sim has {len(nan)} NaN value(s), the first at row {r}, column {c}; a NaN similarity cannot "
                         "be ranked: look for NaN in the embeddings (a zero vector normalised gives NaN) and fix them")
    return a


def _higher_and_tied(sim) -> tuple[np.ndarray, np.ndarray]:
    """For each query of a (Q, N) matrix: items scoring above its right item, and other items tied with it."""
    a = _as_numpy(sim)
    correct = a[np.arange(len(a)), np.arange(len(a))][:, None]  # (Q, 1) score of each query's right item
    higher = (a > correct).sum(axis=1)  # (Q,)
    tied = (a == correct).sum(axis=1) - 1  # (Q,) not counting the right item itself
    return higher, tied


def ranks(sim) -> np.ndarray:
    """Expected 1-based rank of the correct item (the diagonal) for each query of a (Q, N) similarity matrix.

    Ties are broken at random: with h items above it and t tied with it, the rank is h + 1 .. h + t + 1, on
    average h + 1 + t / 2 (so an all-equal matrix gives (N + 1) / 2, chance).
    """
    higher, tied = _higher_and_tied(sim)
    return higher + 1 + tied / 2


def recall_at_k(sim, k: int = 1) -> float:
    """Share of queries whose correct item (on the diagonal of sim, shape (Q, N)) is in the top k.

    Ties are broken at random: a query with h items above its right item and t tied with it counts
    P(rank <= k) = clip((k - h) / (t + 1), 0, 1), so an all-equal matrix scores k / N, chance.
    """
    higher, tied = _higher_and_tied(sim)
    return float(np.clip((k - higher) / (tied + 1), 0.0, 1.0).mean())


def mean_rank(sim) -> float:
    """Mean expected 1-based rank of the correct item (ties broken at random) over the queries of a (Q, N) matrix."""
    return float(ranks(sim).mean())


def normalize_answer(s: str) -> str:
    """Lower-case, strip punctuation and articles: the usual VQA answer normalisation (simplified)."""
    s = re.sub(r"[^\w\s]", " ", str(s).lower())
    return " ".join(w for w in s.split() if w not in {"a", "an", "the"})


def vqa_accuracy(preds: Sequence[str], answers: Sequence) -> float:
    """Mean VQA accuracy: with one reference, exact match; with a list of human answers, min(#agree / 3, 1)."""
    if len(preds) != len(answers):
        raise ValueError(f"{len(preds)} predictions but {len(answers)} answers")
    if not preds:
        return float("nan")
    total = 0.0
    for p, a in zip(preds, answers):
        p = normalize_answer(p)
        if isinstance(a, str):
            total += float(p == normalize_answer(a))
        else:
            total += min(sum(p == normalize_answer(x) for x in a) / 3.0, 1.0)
    return total / len(preds)


def exact_match(hyps: Sequence[str], refs: Sequence) -> float:
    """Share of hypotheses equal to their reference (or any of them), compared as the caption scores compare them:
    the same words after lower-casing and dropping punctuation (`tokenize`)."""
    if isinstance(hyps, str):
        raise InputError("hyps is one string; give a list with one caption per reference, e.g. [caption]")
    if len(hyps) != len(refs):
        raise InputError(f"{len(hyps)} hypotheses but {len(refs)} references; give one reference (or list of them) "
                         "per hypothesis")
    hits = []
    for i, (h, r) in enumerate(zip(hyps, refs)):
        words = tokenize(_text(h, f"hyps[{i}]"))
        options = r if isinstance(r, (list, tuple)) else [r]  # one reference, or a list of them
        hits.append(any(words == tokenize(_text(x, f"refs[{i}]")) for x in options))
    return float(np.mean(hits)) if hits else float("nan")


def _finite_scores(x, name: str) -> np.ndarray:
    """x as a flat float array; InputError naming the first NaN."""
    a = np.asarray(x, dtype=np.float64).ravel()
    nan = np.flatnonzero(np.isnan(a))
    if len(nan):
        raise InputError(f"{name}[{nan[0]}] is NaN ({len(nan)} NaN of {len(a)} scores); a NaN score cannot be ranked: "
                         "find where it comes from, or leave those items out of both lists")
    return a


def roc_auc(pos_scores, neg_scores) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties count 1/2."""
    pos = _finite_scores(pos_scores, "pos_scores")
    neg = _finite_scores(neg_scores, "neg_scores")
    if len(pos) == 0 or len(neg) == 0:
        raise InputError(f"roc_auc needs at least one positive and one negative score; got {len(pos)} positive and "
                         f"{len(neg)} negative")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    r = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks for ties
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


class MetricUnavailable(RuntimeError):
    """A metric cannot run on this machine (no Java, or models not downloaded); the message names the fix."""


def tokenize(caption: str) -> list[str]:
    """A caption's words as the caption scores see them: case-folded, punctuation and symbols dropped.

    Letters (with their accents), marks and digits of every script are kept; everything else separates words,
    as pycocoevalcap's PTB tokenizer drops punctuation. Words are split at spaces: Chinese, Japanese or Thai text
    must already have spaces between its words.
    """
    s = unicodedata.normalize("NFC", caption.casefold())  # "cafe\u0301" and "café" are one word
    return "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in s).split()


def _text(x, where: str) -> str:
    """x itself when it is a caption string; InputError naming where otherwise."""
    if isinstance(x, str):
        return x
    shown = repr(x) if len(repr(x)) <= 40 else type(x).__name__ + " object"
    raise InputError(f"{where} is {shown}, not a caption string; give text, e.g. {where} = 'a red circle'")


def _caption_lists(d: Mapping, name: str) -> dict:
    """{id: caption or [caption, ...]} -> {id: [caption, ...]}, every caption checked to be a string."""
    out = {}
    for k, v in d.items():
        if isinstance(v, str):
            v = [v]
        elif not isinstance(v, (list, tuple)):
            _text(v, f"{name}[{k!r}]")  # raises: not a string, nor a list of them
        out[k] = [_text(x, f"{name}[{k!r}]") for x in v]
    return out


_NO_SPACES = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_UNSPLIT = re.compile(f"[{_NO_SPACES}]{{2}}")  # Thai, Lao, Myanmar, Khmer, kana, CJK ideographs: written without spaces
_SPLIT = re.compile(f"[{_NO_SPACES}]\\s+[{_NO_SPACES}]")  # ... but here split into words with spaces


def _inputs(hyps: Mapping, refs: Mapping, warn: bool) -> tuple[dict, dict]:
    """coco_inputs, and (warn=True) a warning naming captions the scores cannot read as the reader would."""
    if set(hyps) != set(refs):
        only_h, only_r = [k for k in hyps if k not in refs], [k for k in refs if k not in hyps]
        raise InputError(f"hyps and refs must have the same ids ({len(hyps)} in hyps, {len(refs)} in refs)"
                         + (f"; only in hyps: {only_h[:5]}" if only_h else "")
                         + (f"; only in refs: {only_r[:5]}" if only_r else ""))
    if not hyps:
        raise InputError("no captions to score: hyps and refs are empty")
    raw_h, raw_r = _caption_lists(hyps, "hyps"), _caption_lists(refs, "refs")
    for k, v in raw_h.items():
        if not v:
            raise InputError(f"hyps[{k!r}] is empty; give the caption to score, e.g. hyps[{k!r}] = ['a red circle']")
        if len(v) > 1:
            raise InputError(f"hyps[{k!r}] has {len(v)} captions; the scores take one caption per id: keep the one to "
                             "score ({k: v[:1] for k, v in hyps.items()} keeps each id's first)")
    for k, v in raw_r.items():
        if not v:
            raise InputError(f"refs[{k!r}] is empty; every id needs at least one reference caption: add one, or "
                             f"leave id {k!r} out of both hyps and refs")
        for j, r in enumerate(v):
            if not tokenize(r):
                raise InputError(f"refs[{k!r}][{j}] = {r!r} has no words (after lower-casing and dropping "
                                 f"punctuation); remove that reference, or leave id {k!r} out of both hyps and refs")
    res = {k: [" ".join(tokenize(v[0]))] for k, v in raw_h.items()}
    gts = {k: [" ".join(tokenize(r)) for r in raw_r[k]] for k in raw_h}  # in the order of hyps, as res
    if warn:
        empty = [f"caption {v[0]!r} (id {k!r})" for k, v in raw_h.items() if not res[k][0]]
        if empty:
            warnings.warn(f"{len(empty)} caption(s) have no words after lower-casing and dropping punctuation and "
                          f"score 0 on every metric: {', '.join(empty[:5])}", stacklevel=3)
        unsplit = [f"{c!r} ({name} id {k!r})" for name, d in (("hyps", raw_h), ("refs", raw_r))
                   for k, v in d.items() for c in v if _UNSPLIT.search(c) and not _SPLIT.search(c)]
        if unsplit:
            warnings.warn(f"the scores split captions into words at spaces, and {len(unsplit)} caption(s) are in a "
                          f"script written without them (Chinese, Japanese, Thai...): {', '.join(unsplit[:3])}; each "
                          "run of characters counts as one word, so only whole runs match. Put spaces between the "
                          "words first (a word segmenter, e.g. jieba for Chinese, does it)", stacklevel=3)
    return gts, res


def coco_inputs(hyps: Mapping, refs: Mapping) -> tuple[dict, dict]:
    """Check ids and captions and tokenize (`tokenize`): (gts {id: [ref, ...]}, res {id: [hyp]}).

    Raises InputError, naming the id, for mismatched ids, several or no hypotheses for an id, a caption that is
    not a string, and an empty reference list or a reference with no words.
    """
    return _inputs(hyps, refs, warn=False)


MIN_CIDER_IMAGES = 10  # fewer images than this: CIDEr's idf weights (from the references scored) say little


def _cider(gts: dict, res: dict, background: Mapping | None) -> np.ndarray:
    """Per-item CIDEr-D of res's ids, background's references joining the document frequencies; warns with too few."""
    from pycocoevalcap.cider.cider import Cider

    g2, r2 = dict(gts), dict(res)
    if background:
        try:
            bg_gts, bg_res = coco_inputs({k: v if isinstance(v, str) else v[:1] for k, v in background.items()},
                                         background)
        except InputError as e:
            raise InputError(f"background (as refs): {e}") from None
        g2.update({("background", k): v for k, v in bg_gts.items()})
        r2.update({("background", k): v for k, v in bg_res.items()})
    n = len(g2)
    if n < MIN_CIDER_IMAGES:
        idf = "log(images / images whose references have the n-gram)"
        what = (f"CIDEr over 1 image scores every caption 0: its idf weights are {idf} = log(1 / 1) = 0" if n == 1 else
                f"CIDEr over {n} images says little: its idf weights are {idf}, at most log({n}) = {np.log(n):.2f} "
                "here, and 0 for the n-grams every image has")
        warnings.warn(f"{what}. Pass background={{id: [reference, ...]}} with the references of {MIN_CIDER_IMAGES} or "
                      "more other images (caption_scores and caption_scores_per_item take it), or score more images "
                      "at once", stacklevel=3)
    cider = Cider().compute_score(g2, r2)[1]  # per id, in the order of g2's keys
    return np.asarray(cider[: len(gts)], dtype=float)


def caption_scores(hyps: Mapping, refs: Mapping, meteor: bool = False, spice: bool = False,
                   background: Mapping | None = None) -> dict[str, float]:
    """Corpus BLEU-1..4, ROUGE-L and CIDEr-D from pycocoevalcap (+ METEOR and SPICE when asked and possible).

    Args:
        hyps: {id: [hypothesis]} (one string per id; a bare string is accepted too).
        refs: {id: [reference, ...]}, the same ids.
        meteor: add "METEOR" (needs Java; ~8 s to start the first time); skipped with a warning without Java.
        spice: add "SPICE" (needs Java and Stanford CoreNLP models); skipped with a warning when missing.
        background: more {id: [reference, ...]} whose n-grams join CIDEr's document frequencies (with fewer than
            10 images scored its idf weights say little; over one image CIDEr is always 0). Not scored.
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        raise ImportError("caption_scores needs pycocoevalcap: pip install pycocoevalcap") from None
    gts, res = _inputs(hyps, refs, warn=True)
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)})
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(_cider(gts, res, background).mean())
    for name, wanted, fn in (("METEOR", meteor, _meteor), ("SPICE", spice, _spice)):
        if wanted:
            try:
                out[name] = float(fn(gts, res)[0])
            except MetricUnavailable as e:
                warnings.warn(f"{name} skipped: {e}", stacklevel=2)
    return out


def caption_scores_per_item(hyps: Mapping, refs: Mapping, meteor: bool = False,
                            background: Mapping | None = None) -> dict[str, np.ndarray]:
    """Sentence-level BLEU-1..4, ROUGE-L, CIDEr-D (and METEOR) for each id, in the order of hyps.

    Args:
        background: more {id: [reference, ...]} whose n-grams join CIDEr's document frequencies (its idf weights
            come from the corpus scored; a handful of examples alone gives them no contrast). Not scored.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = _inputs(hyps, refs, warn=True)
    out = {}
    _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{n + 1}": np.asarray(b, dtype=float) for n, b in enumerate(bleu)})
    out["ROUGE-L"] = np.asarray(Rouge().compute_score(gts, res)[1], dtype=float)
    out["CIDEr"] = _cider(gts, res, background)
    if meteor:
        try:
            out["METEOR"] = np.asarray(_meteor(gts, res)[1], dtype=float)
        except MetricUnavailable as e:
            warnings.warn(f"METEOR skipped: {e}", stacklevel=2)
    return out


def java_version() -> str | None:
    """The first line of `java -version`, or None when no working Java is on the PATH."""
    import shutil
    import subprocess

    if shutil.which("java") is None:
        return None
    try:
        p = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (p.stderr or p.stdout).strip().splitlines()
    return lines[0] if p.returncode == 0 and lines else None


_NO_JAVA = ("it needs Java 8 or newer on the PATH (Debian/Ubuntu: apt install default-jre; "
            "conda: conda install openjdk; Colab has it)")
_METEOR = []  # the running METEOR process, started once per Python process (~8 s: it loads paraphrase tables)


def meteor_score(hyps: Mapping, refs: Mapping) -> float:
    """Corpus METEOR 1.5 (exact, stem, synonym and paraphrase matches) from pycocoevalcap's Java scorer.

    Args: as caption_scores. Raises MetricUnavailable, naming the fix, when Java is missing.
    """
    return float(_meteor(*_inputs(hyps, refs, warn=True))[0])


def _start_meteor():
    """pycocoevalcap's METEOR scorer, its Java process told where the paraphrase table is.

    Left to find it, METEOR 1.5 builds the table's URL from its jar's and encodes it twice, so under a folder
    whose name has a space ("My Projects", "C:\\Users\\Jane Doe") the process stops at once and every score
    fails. `-a` with the file's path gives the same scores everywhere.
    """
    import os
    import subprocess
    import threading

    from pycocoevalcap.meteor import meteor as mod

    m = mod.Meteor.__new__(mod.Meteor)  # its compute_score, with the process started here
    here = os.path.dirname(os.path.abspath(mod.__file__))
    m.meteor_cmd = ["java", "-jar", "-Xmx2G", mod.METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm",
                    "-a", os.path.join(here, "data", "paraphrase-en.gz")]
    m.meteor_p = subprocess.Popen(m.meteor_cmd, cwd=here, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
    m.lock = threading.Lock()
    return m


def _drop_meteor() -> None:
    """Forget a failed METEOR process without hanging: pycocoevalcap's compute_score keeps its lock when the
    process fails, and its __del__ then waits for that lock forever (the next garbage collection hangs)."""
    while _METEOR:
        m = _METEOR.pop()
        try:
            m.meteor_p.kill()
            m.meteor_p.wait(timeout=10)
        except Exception:  # noqa: BLE001 - already gone, or it will be at exit
            pass
        if m.lock.locked():
            m.lock.release()


def _meteor(gts: dict, res: dict) -> tuple:
    """(corpus score, per-item scores) from the shared METEOR process, started (or restarted once) as needed."""
    if java_version() is None:
        raise MetricUnavailable(_NO_JAVA)
    for attempt in range(2):  # restart the Java process once if it died
        try:
            if not _METEOR:
                _METEOR.append(_start_meteor())
            return _METEOR[0].compute_score(gts, res)
        except (OSError, ValueError) as e:
            _drop_meteor()
            if attempt:
                raise MetricUnavailable(f"the METEOR Java process failed ({e}); check `java -version` works") from None
    raise AssertionError("unreachable")


def spice_score(hyps: Mapping, refs: Mapping) -> float:
    """SPICE (scene-graph F-score) from pycocoevalcap's Java scorer, if its Stanford CoreNLP models are present.

    pycocoevalcap downloads CoreNLP 3.6.0 (~400 MB) on first use; this function never downloads: when the
    models are missing (or Java is) it raises MetricUnavailable with the command that fetches them.
    """
    return float(_spice(*_inputs(hyps, refs, warn=True))[0])


def _spice(gts: dict, res: dict) -> tuple:
    """(corpus score, per-item results) from pycocoevalcap's SPICE; MetricUnavailable naming the fix."""
    import os

    if java_version() is None:
        raise MetricUnavailable(_NO_JAVA)
    try:
        import pycocoevalcap.spice.spice as spice_mod
    except ImportError:
        raise ImportError("spice_score needs pycocoevalcap: pip install pycocoevalcap") from None
    lib = os.path.join(os.path.dirname(spice_mod.__file__), "lib")
    if not os.path.isfile(os.path.join(lib, "stanford-corenlp-3.6.0-models.jar")):
        raise MetricUnavailable(
            f"SPICE needs the Stanford CoreNLP 3.6.0 models in {lib}, which are not there (a ~400 MB download); "
            "run once while online: python -c \"from pycocoevalcap.spice.get_stanford_models import "
            "get_stanford_models; get_stanford_models()\"")
    try:
        return spice_mod.Spice().compute_score(gts, res)
    except Exception as e:  # the Java side fails in many ways (memory, lmdb, old Java): report them as one
        raise MetricUnavailable(f"the SPICE Java scorer failed: {type(e).__name__}: {e}") from None


# -- attention maps against ground-truth boxes (image-sized maps; box = (x0, y0, x1, y1)) ----------------

def pointing_hit(heat: np.ndarray, box) -> bool:
    """True when the peak of an image-sized map lies inside box = (x0, y0, x1, y1).

    The peak is the pixel of highest value; where several pixels share it, the one nearest the map's centre. A map
    upsampled from a patch grid (mmkit.attention.maps.upsample) is flat from a top patch at the picture's edge out to
    that edge, and np.argmax alone takes the first of those pixels, on the picture's left or top edge, which can lie
    outside the object the patch covers. A flat map (every pixel equal) has no peak: a miss.
    """
    h = np.asarray(heat)
    y, x = np.unravel_index(int(np.argmax(h)), h.shape)
    tied = h == h[y, x]
    if tied.all():
        return False
    if tied.sum() > 1:  # a plateau: the tied pixel nearest the centre (the first in row-major order on a tie)
        ys, xs = np.nonzero(tied)
        i = int(np.argmin((ys - (h.shape[0] - 1) / 2) ** 2 + (xs - (h.shape[1] - 1) / 2) ** 2))
        y, x = ys[i], xs[i]
    x0, y0, x1, y1 = box
    return bool(x0 <= x < x1 and y0 <= y < y1)


def mass_in_box(heat: np.ndarray, box) -> float:
    """Share of an image-sized map's (non-negative) mass inside box."""
    h = np.clip(np.asarray(heat, dtype=np.float64), 0, None)
    total = h.sum()
    if total <= 0:
        return 0.0
    x0, y0, x1, y1 = box
    return float(h[y0:y1, x0:x1].sum() / total)


def box_share(box, size) -> float:
    """The box's share of the image: the uniform map's expected pointing and mass score."""
    x0, y0, x1, y1 = box
    w, h = size
    return (x1 - x0) * (y1 - y0) / (w * h)
