"""Perturbation faithfulness: delete (or insert) image patches in the order a map ranks them, watch the output.

The standard test of Chefer et al. (2021) and Petsiuk et al. (2018, RISE). A map that explains the model's
output ranks first the patches the output depends on, so deleting them first makes the output fall faster
(a lower deletion AUC) than deleting patches in a random order, and revealing them first on a blank image
makes it rise faster (a higher insertion AUC). It needs no boxes, so it runs on real photos too.

The output is the model's own: the log-likelihood per token of its caption (blip-caption), the probability of
its answer (VQA), P(match) (BLIP-ITM; ViLT-ITM's score), the cosine similarity of image and prompt (CLIP, ALIGN).
A deleted patch is set to 0 in the processor's normalised pixels: the dataset's mean colour. Every step of
every curve of one image runs as one batch (`batch_size` copies per forward pass).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..families import ADAPTERS, adapter, attention_function

STEPS = 8  # curve steps: fractions 0, 1/8, ..., 1 of the patches deleted / inserted
N_RANDOM = 2  # random orderings averaged per image for the baseline curves


def auc(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule: curves (..., K) over fractions (K,) -> (...)."""
    c = np.asarray(curves, dtype=np.float64)
    dx = np.diff(np.asarray(fractions, dtype=np.float64))  # (K - 1,)
    return ((c[..., 1:] + c[..., :-1]) * 0.5 * dx).sum(-1)


@dataclass
class Perturbation:
    """Deletion and insertion curves of one model and map method over N images.

    fractions: (K,) share of patches deleted (deletion) or revealed (insertion) at each step.
    deletion, insertion: (N, K) the model's score at each step, patches in the map's order.
    random_deletion, random_insertion: (N, K) the same in random orders (mean of `N_RANDOM`).
    """

    model: str
    method: str
    score: str  # what the curves measure, e.g. "P(answer)"
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    texts: list = field(default_factory=list)  # the text each image was scored with (caption, question, prompt)
    over: str = "patches"  # what was deleted / inserted: image "patches" or text "tokens"

    def aucs(self, which: str) -> np.ndarray:
        """Per-image AUC, (N,), of "deletion", "insertion", "random_deletion" or "random_insertion"."""
        return auc(getattr(self, which), self.fractions)

    @property
    def deletion_auc(self) -> float:
        return float(self.aucs("deletion").mean())

    @property
    def insertion_auc(self) -> float:
        return float(self.aucs("insertion").mean())

    @property
    def random_deletion_auc(self) -> float:
        return float(self.aucs("random_deletion").mean())

    @property
    def random_insertion_auc(self) -> float:
        return float(self.aucs("random_insertion").mean())

    @property
    def deletion_margin(self) -> float:
        """Random deletion AUC minus the map's: > 0 when the map finds what the output depends on."""
        return self.random_deletion_auc - self.deletion_auc

    @property
    def insertion_margin(self) -> float:
        """The map's insertion AUC minus random's: > 0 when the map finds what the output depends on."""
        return self.insertion_auc - self.random_insertion_auc

    def __repr__(self) -> str:
        return (f"Perturbation({self.model!r}, {self.method!r}, {len(self.deletion)} images, {self.over}, {self.score}: "
                f"deletion AUC {self.deletion_auc:.3f} (random {self.random_deletion_auc:.3f}), "
                f"insertion AUC {self.insertion_auc:.3f} (random {self.random_insertion_auc:.3f}))")


# --- the model's own score on a batch of perturbed copies -------------------------------------------------
# Each family's row in mmkit.families.ADAPTERS names what its score is (perturb_score), what the scorer needs
# beside the pixels (scorer_state: fn(m, enc, text, labels) -> dict) and the scorer itself (image_scorer:
# fn(m, enc, px, state) -> (B,) tensor); the functions are below.


def _rep(t, B: int):
    """(1, ...) -> (B, ...) without a copy."""
    return t.expand(B, *t.shape[1:])


def dual_scorer_state(m, enc: dict, text: str, labels) -> dict:
    """CLIP/ALIGN: the prompt's embedding first, then the other labels' (1 + L, D), and the logit scale."""
    from ..tasks.embeddings import logit_scale
    from .dual import prompt_embeddings

    others = [x for x in (labels or []) if x != text]  # zero-shot against these, when given
    return {"text_emb": prompt_embeddings(m, [m.spec.zero_shot_template.format(x) for x in [text] + others]),
            "scale": logit_scale(m)}


def blip_caption_scorer_state(m, enc: dict, text: str, labels) -> dict:
    """BLIP captioning: the caption's ids (1, T), starting from the decoder's BOS token."""
    ids = m.processor.tokenizer(text, return_tensors="pt")["input_ids"].to(m.device)
    ids[0, 0] = m.model.config.text_config.bos_token_id  # BLIP's decoder starts from its BOS token
    return {"ids": ids}


def blip_itm_scorer_state(m, enc: dict, text: str, labels) -> dict:
    """BLIP-ITM: the caption tokenised, {"q": ids and mask (1, T)}."""
    return {"q": m.processor.tokenizer(text, return_tensors="pt").to(m.device)}


def blip_vqa_scorer_state(m, enc: dict, text: str, labels) -> dict:
    """BLIP-VQA: the question tokenised and the model's own answer to it on the whole image (1, A)."""
    state = blip_itm_scorer_state(m, enc, text, labels)
    state["answer"] = m.model.generate(pixel_values=enc["pixel_values"], input_ids=state["q"]["input_ids"],
                                       attention_mask=state["q"]["attention_mask"], max_new_tokens=10)
    return state


def vilt_vqa_scorer_state(m, enc: dict, text: str, labels) -> dict:
    """ViLT-VQA: the class of the model's answer on the whole image."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return {"label": int(m.model(**enc).logits[0].argmax())}


def dual_image_scorer(m, enc: dict, px, state: dict):
    """CLIP/ALIGN: cosine(image, prompt), or the prompt's zero-shot probability among the labels: (B,)."""
    import torch

    from ..tasks.embeddings import pooled_feature

    f = torch.nn.functional.normalize(pooled_feature(m.model.get_image_features(pixel_values=px)).float(), dim=-1)
    sims = f @ state["text_emb"].float().T  # (B, 1 + L)
    return sims[:, 0] if sims.shape[1] == 1 else (state["scale"] * sims).softmax(-1)[:, 0]


def _vilt_logits(m, enc: dict, px):
    """ViLT's logits (B, labels) or (B, 1) with the text repeated beside each perturbed copy."""
    kw = {k: (px if k == "pixel_values" else _rep(v, px.shape[0])) for k, v in enc.items()}
    return m.model(**kw).logits.float()


def vilt_vqa_image_scorer(m, enc: dict, px, state: dict):
    """ViLT-VQA: P(the answer on the whole image), (B,)."""
    return _vilt_logits(m, enc, px).softmax(-1)[:, state["label"]]


def vilt_itm_image_scorer(m, enc: dict, px, state: dict):
    """ViLT-ITM: the matching score (a logit), (B,)."""
    return _vilt_logits(m, enc, px)[:, 0]


def blip_caption_image_scorer(m, enc: dict, px, state: dict):
    """BLIP captioning: the caption's log-likelihood per token, teacher-forced, (B,)."""
    import torch

    vis = m.model.vision_model(pixel_values=px).last_hidden_state  # (B, 1 + N, D)
    ids = _rep(state["ids"], px.shape[0])  # (B, T)
    logits = m.model.text_decoder(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  encoder_hidden_states=vis, return_dict=True).logits.float()
    logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]  # (B, T - 1)
    return logp.mean(-1)


def _blip_text_states(m, px, state: dict):
    """BLIP's text encoder over the tokenised text, attending to each copy's vision states: (B, T, D)."""
    vis = m.model.vision_model(pixel_values=px).last_hidden_state  # (B, 1 + N, D)
    q, B = state["q"], px.shape[0]
    return m.model.text_encoder(input_ids=_rep(q["input_ids"], B), attention_mask=_rep(q["attention_mask"], B),
                                encoder_hidden_states=vis, return_dict=True).last_hidden_state


def blip_itm_image_scorer(m, enc: dict, px, state: dict):
    """BLIP-ITM: P(match) from the ITM head, (B,)."""
    return m.model.itm_head(_blip_text_states(m, px, state)[:, 0]).float().softmax(-1)[:, 1]


def blip_vqa_image_scorer(m, enc: dict, px, state: dict):
    """BLIP-VQA: P(answer) teacher-forced through the answer decoder, (B,)."""
    import torch

    h, B = _blip_text_states(m, px, state), px.shape[0]
    a = _rep(state["answer"], B)  # (B, A)
    logits = m.model.text_decoder(input_ids=a, attention_mask=torch.ones_like(a), encoder_hidden_states=h,
                                  encoder_attention_mask=_rep(state["q"]["attention_mask"], B),
                                  return_dict=True).logits.float()
    return logits[:, :-1].log_softmax(-1).gather(-1, a[:, 1:, None])[..., 0].sum(-1).exp()


def model_inputs(m, image, text, labels=None):
    """Processor inputs of one image (and text, for a family whose processor takes both), and the state its
    scorer needs: (enc, state)."""
    import torch

    from .cross import image_inputs

    how = adapter(m)
    if how.joint_inputs:
        enc = m.processor(images=image, text=text, return_tensors="pt")
        enc = {k: (v.to(m.device, m.dtype) if v.is_floating_point() else v.to(m.device)) for k, v in enc.items()}
    else:
        enc = dict(image_inputs(m, image))
    state = {}
    with torch.inference_mode():
        if how.scorer_state is not None:
            state = attention_function(how.scorer_state)(m, enc, text, labels)
    return enc, state


def _scores(m, enc: dict, px, state: dict):
    """The model's score of each perturbed copy: px (B, C, H, W) -> (B,) float numpy."""
    import torch

    scorer = attention_function(adapter(m).image_scorer)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # ViLT samples patches: the same draw for every copy and call
        s = scorer(m, enc, px, state)
    return s.detach().cpu().numpy().astype(np.float64)


# --- orderings, masks, curves -----------------------------------------------------------------------------

def explanation_map(maps, method: str) -> np.ndarray:
    """One (gh, gw) map for the whole output: the prompt's map (CLIP/ALIGN "<prompt>"), else the mean of every
    word's map, each clipped at 0 and scaled to sum 1 (so no word outweighs the others)."""
    if "<prompt>" in maps.words:
        return np.asarray(maps.for_token("<prompt>", method=method), dtype=np.float64)
    out = 0.0
    for i in range(len(maps.words)):
        h = np.clip(np.asarray(maps.for_token(i, method=method), dtype=np.float64), 0, None)
        out = out + (h / h.sum() if h.sum() > 0 else h)
    return np.asarray(out, dtype=np.float64)


def _masks(order: np.ndarray, grid, fractions, shape, insert: bool) -> "torch.Tensor":
    """Pixel masks (K, 1, H, W), 1 = keep, for the patches in `order` deleted (or revealed) step by step."""
    import torch

    gh, gw = grid
    H, W = shape
    rows = np.minimum((np.arange(H) * gh) // H, gh - 1)  # grid row of each pixel row
    cols = np.minimum((np.arange(W) * gw) // W, gw - 1)
    cell = rows[:, None] * gw + cols[None, :]  # (H, W) patch index of each pixel
    rank = np.empty(gh * gw, dtype=np.int64)
    rank[order] = np.arange(gh * gw)  # rank of each patch in the order
    pix_rank = rank[cell]  # (H, W)
    counts = np.rint(np.asarray(fractions) * gh * gw).astype(int)  # patches affected at each step
    chosen = pix_rank[None] < counts[:, None, None]  # (K, H, W) the patches deleted / revealed so far
    keep = chosen if insert else ~chosen
    return torch.from_numpy(keep[:, None].astype(np.float32))


def _curves(m, enc, state, orders: list[np.ndarray], grid, fractions, batch_size: int) -> np.ndarray:
    """Scores (len(orders), 2, K): for each order, its deletion curve then its insertion curve."""
    import torch

    px = enc["pixel_values"]  # (1, C, H, W)
    inner = np.asarray(fractions)[1:-1]  # every curve starts and ends at the whole image or the blank one
    masks = torch.cat([torch.ones(1, 1, *px.shape[-2:]), torch.zeros(1, 1, *px.shape[-2:])]
                      + [_masks(o, grid, inner, px.shape[-2:], ins) for o in orders for ins in (False, True)])
    copies = px * masks.to(px.device, px.dtype)  # (2 + 2 * O * (K - 2), C, H, W) deleted patches at the mean (0)
    out = np.concatenate([_scores(m, enc, copies[i:i + batch_size], state)
                          for i in range(0, len(copies), batch_size)])
    full, blank = out[0], out[1]
    mid = out[2:].reshape(len(orders), 2, len(inner))
    ends = np.array([[full, blank], [blank, full]])  # (deletion, insertion) x (first, last)
    return np.concatenate([np.broadcast_to(ends[:, :1], (len(orders), 2, 1)), mid,
                           np.broadcast_to(ends[:, 1:], (len(orders), 2, 1))], axis=-1)


def perturbation_many(m, images, methods: list[str], texts=None, steps: int = STEPS, n_random: int = N_RANDOM,
                      batch_size: int = 64, seed: int = 0, labels=None, over: str = "patches") -> dict[str, Perturbation]:
    """`perturbation` for several methods at once: the random curves (method-independent) are computed once."""
    from ..data.images import load_image
    from ..domain import fit_picture
    from ..models import load_model
    from . import attention_maps

    m = load_model(m, attention=True) if isinstance(m, str) else m
    how = adapter(m)
    if how.image_scorer is None:
        can = sorted(f for f, a in ADAPTERS.items() if a.image_scorer is not None)
        raise InputError(f"perturbation does not support {m.spec.name} ({m.spec.family}); use one of {can}")
    single = not isinstance(images, (list, tuple))
    images = [images] if single else list(images)
    if texts is None or isinstance(texts, str):
        texts = [texts] * len(images)
    if len(texts) != len(images):
        raise InputError(f"texts has {len(texts)} entries for {len(images)} images; give one text per image")
    if steps < 1 or n_random < 1:
        raise InputError(f"steps={steps}, n_random={n_random}: both must be at least 1")
    if over not in ("patches", "tokens"):
        raise InputError(f"over={over!r}: use 'patches' (the image) or 'tokens' (the text)")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    score = "P(prompt) among the labels" if labels and how.dual_encoder else how.perturb_score
    if over == "tokens":
        from .text_perturbation import text_perturbation_many

        used = []
        imgs = [fit_picture(m, load_image(x)) for x in images]
        curves = text_perturbation_many(m, imgs, methods, texts, fractions, n_random, batch_size, seed, labels, used)
        return {meth: Perturbation(m.spec.name, meth, score, fractions, **{k: np.stack(v) for k, v in c.items()},
                                   texts=used, over="tokens") for meth, c in curves.items()}
    curves = {k: {x: [] for x in ("deletion", "insertion", "random_deletion", "random_insertion")} for k in methods}
    used = []
    for n, (image, text) in enumerate(zip(images, texts)):
        image = fit_picture(m, load_image(image))
        maps = attention_maps(m, image, text)
        text = maps.text if text is None else text  # a captioning model's own caption
        used.append(text)
        for meth in methods:
            if meth not in maps.methods:
                raise InputError(f"method {meth!r} is not available for {m.spec.name}; choose one of {maps.methods}")
        enc, state = model_inputs(m, image, text, labels)
        rng = np.random.default_rng(seed + n)
        P = maps.grid[0] * maps.grid[1]
        heats = [explanation_map(maps, meth).ravel() for meth in methods]
        orders = [np.argsort(-h, kind="stable") for h in heats] + [rng.permutation(P) for _ in range(n_random)]
        out = _curves(m, enc, state, orders, maps.grid, fractions, batch_size)  # (O, 2, K)
        rand = out[len(methods):].mean(axis=0)  # (2, K)
        for k, meth in enumerate(methods):
            c = curves[meth]
            c["deletion"].append(out[k, 0]), c["insertion"].append(out[k, 1])
            c["random_deletion"].append(rand[0]), c["random_insertion"].append(rand[1])
    return {meth: Perturbation(m.spec.name, meth, score, fractions, **{k: np.stack(v) for k, v in c.items()},
                               texts=used) for meth, c in curves.items()}


def perturbation(m, images, method: str | None = None, texts=None, steps: int = STEPS, n_random: int = N_RANDOM,
                 batch_size: int = 64, seed: int = 0, labels=None, over: str = "patches") -> Perturbation:
    """Deletion and insertion curves of one map method on the images, against random orderings.

    Args:
        m: a Loaded model (or a name) of family clip, align, vilt-vqa, vilt-itm, blip-caption, blip-vqa, blip-itm.
        images: one image or a list (anything load_image takes: real photos too; no boxes needed).
        method: the map method ("attention", "rollout", "relevance", "gradcam", "similarity"); default the
            first the model's maps offer.
        texts: one text or one per image: the prompt (CLIP/ALIGN), question (VQA), caption (ITM); None for
            a captioning model scores its own caption.
        steps: the curves have steps + 1 points, fractions 0..1 of the patches.
        n_random: random orderings averaged for the baseline.
        batch_size: perturbed copies per forward pass.
        labels: CLIP/ALIGN only: other labels; the score is then the prompt's zero-shot probability among
            them instead of the cosine similarity (which deleting any patch lowers).
        over: "patches" (delete image patches) or "tokens" (delete the text's tokens, ranked by the method's
            text-side reading: text_perturbation.py; not for captioning models, whose text is the output).
    Returns a Perturbation: curves (N, steps + 1) and their AUCs, the map's and random's.
    """
    if method is None and over == "tokens":
        from ..models import load_model

        m = load_model(m, attention=True) if isinstance(m, str) else m
        method = (adapter(m).text_methods or ("attention",))[0]
    if method is None:
        from . import attention_maps

        first = images if not isinstance(images, (list, tuple)) else images[0]
        text = texts if texts is None or isinstance(texts, str) else texts[0]
        m_ = m
        if isinstance(m, str):
            from ..models import load_model

            m_ = m = load_model(m, attention=True)
        method = attention_maps(m_, first, text).methods[0]
    return perturbation_many(m, images, [method], texts, steps, n_random, batch_size, seed, labels, over)[method]
