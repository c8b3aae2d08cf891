"""Metrics: retrieval R@K, VQA accuracy, exact match, ROC AUC, and COCO caption scores.

Caption scores come from pycocoevalcap (the COCO caption evaluation code), not re-implementations.
METEOR and SPICE run Java programs that pycocoevalcap ships; when Java (or SPICE's Stanford CoreNLP
models) is missing they raise `MetricUnavailable`, and `caption_scores` skips them with a warning.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np


def _as_numpy(sim) -> np.ndarray:
    if hasattr(sim, "detach"):
        sim = sim.detach().float().cpu().numpy()
    a = np.asarray(sim, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] > a.shape[1]:
        raise ValueError(f"sim must be a (queries, items) matrix with queries <= items, got shape {a.shape}")
    return a


def ranks(sim) -> np.ndarray:
    """1-based rank of the correct item (the diagonal) for each query of a (Q, N) similarity matrix."""
    a = _as_numpy(sim)
    correct = a[np.arange(len(a)), np.arange(len(a))][:, None]  # (Q, 1)
    return (a > correct).sum(axis=1) + 1  # ties count in the query's favour


def recall_at_k(sim, k: int = 1) -> float:
    """Share of queries whose correct item (on the diagonal of sim, shape (Q, N)) is in the top k."""
    return float((ranks(sim) <= k).mean())


def mean_rank(sim) -> float:
    """Mean 1-based rank of the correct item over the queries of a (Q, N) similarity matrix."""
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
    """Share of hypotheses equal (after whitespace/case normalisation) to their reference (or any of them)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    norm = lambda s: " ".join(str(s).lower().split())  # noqa: E731
    hits = [norm(h) in ({norm(r)} if isinstance(r, str) else {norm(x) for x in r}) for h, r in zip(hyps, refs)]
    return float(np.mean(hits)) if hits else float("nan")


def roc_auc(pos_scores, neg_scores) -> float:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties count 1/2."""
    pos = np.asarray(pos_scores, dtype=np.float64).ravel()
    neg = np.asarray(neg_scores, dtype=np.float64).ravel()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("roc_auc needs at least one positive and one negative score")
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


def coco_inputs(hyps: Mapping, refs: Mapping) -> tuple[dict, dict]:
    """Check ids and tokenize: (gts {id: [ref, ...]}, res {id: [hyp]}), lower-case words and digits only."""
    if set(hyps) != set(refs):
        raise ValueError("hyps and refs must have the same ids")
    if not hyps:
        raise ValueError("caption_scores needs at least one caption")
    tok = lambda s: " ".join(re.findall(r"[a-z0-9]+", str(s).lower()))  # noqa: E731  PTB-like, no Java
    res = {k: [tok(v if isinstance(v, str) else v[0])] for k, v in hyps.items()}
    gts = {k: [tok(r) for r in ([v] if isinstance(v, str) else v)] for k, v in refs.items()}
    return gts, res


def caption_scores(hyps: Mapping, refs: Mapping, meteor: bool = False, spice: bool = False) -> dict[str, float]:
    """Corpus BLEU-1..4, ROUGE-L and CIDEr-D from pycocoevalcap (+ METEOR and SPICE when asked and possible).

    Args:
        hyps: {id: [hypothesis]} (one string per id; a bare string is accepted too).
        refs: {id: [reference, ...]}, the same ids.
        meteor: add "METEOR" (needs Java; ~8 s to start the first time); skipped with a warning without Java.
        spice: add "SPICE" (needs Java and Stanford CoreNLP models); skipped with a warning when missing.
    """
    import warnings

    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        raise ImportError("caption_scores needs pycocoevalcap: pip install pycocoevalcap") from None
    gts, res = coco_inputs(hyps, refs)
    out: dict[str, float] = {}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{i + 1}": float(b) for i, b in enumerate(bleu)})
    out["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    out["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    for name, wanted, fn in (("METEOR", meteor, meteor_score), ("SPICE", spice, spice_score)):
        if wanted:
            try:
                out[name] = fn(hyps, refs)
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
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts, res = coco_inputs(hyps, refs)
    keys = list(hyps)
    out = {}
    _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"BLEU-{n + 1}": np.asarray(b, dtype=float) for n, b in enumerate(bleu)})
    out["ROUGE-L"] = np.asarray(Rouge().compute_score(gts, res)[1], dtype=float)
    g2, r2 = dict(gts), dict(res)
    if background:
        bg_gts, bg_res = coco_inputs({k: v[0] if not isinstance(v, str) else v for k, v in background.items()},
                                      background)
        g2.update({("background", k): v for k, v in bg_gts.items()})
        r2.update({("background", k): v for k, v in bg_res.items()})
    cider = Cider().compute_score(g2, r2)[1]  # per id, in the order of g2's keys
    out["CIDEr"] = np.asarray(cider[: len(keys)], dtype=float)
    if meteor:
        try:
            out["METEOR"] = np.asarray(_meteor(gts, res)[1], dtype=float)
        except MetricUnavailable as e:
            import warnings

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
    return float(_meteor(*coco_inputs(hyps, refs))[0])


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
    import os

    gts, res = coco_inputs(hyps, refs)
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
        return float(spice_mod.Spice().compute_score(gts, res)[0])
    except Exception as e:  # the Java side fails in many ways (memory, lmdb, old Java): report them as one
        raise MetricUnavailable(f"the SPICE Java scorer failed: {type(e).__name__}: {e}") from None


# -- attention maps against ground-truth boxes (image-sized maps; box = (x0, y0, x1, y1)) ----------------

def pointing_hit(heat: np.ndarray, box) -> bool:
    """True when the peak of an image-sized map lies inside box = (x0, y0, x1, y1)."""
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
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
