"""One row per model family: what the task functions and the attention maps do differently for it.

mmkit.models' registry says which Hugging Face class is which family and which tasks a family supports;
this table says how. How an image or a text becomes an embedding, how a prompt or a question is tokenised,
how an answer is read, and which function extracts the family's attention maps. Code elsewhere asks
`adapter(m)` instead of branching on the family's name.

Adding a family: its class in models.CLASS_FAMILY, its tasks in models.FAMILY_TASKS (and a family name in
models.FAMILIES when it has a pretrained/bundled pair), a map extractor in mmkit.attention (and, for the
faithfulness tests, its scorers in attention/perturbation.py and attention/text_perturbation.py), and a row here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


# -- embeddings (CLIP, ALIGN and BLIP's contrastive head) ---------------------------------------------

def dual_image_features(m, px):
    """CLIP/ALIGN: (B, 3, H, W) pixels -> (B, E) image features (the CLS token alone, speedups/layers.py 8.)."""
    from .speedups import clip_image_features
    from .tasks.embeddings import pooled_feature

    f = None if m.attention else clip_image_features(m.model, px)  # None unless the fast path applies
    return pooled_feature(m.model.get_image_features(pixel_values=px)) if f is None else f


def blip_image_projection(model, px):
    """BLIP-ITM's model (or a LoRA copy): (B, 3, H, W) pixels -> (B, E), the vision CLS token projected."""
    h = model.vision_model(pixel_values=px).last_hidden_state  # (B, 1 + patches, D)
    return model.vision_proj(h[:, 0, :])


def blip_text_projection(model, enc):
    """BLIP-ITM's model: tokenised texts -> (B, E), the text CLS token projected."""
    h = model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    return model.text_proj(h.last_hidden_state[:, 0, :])


def blip_image_features(m, px):
    """BLIP-ITM: (B, 3, H, W) pixels -> (B, E) from the vision CLS token through the contrastive projection."""
    return blip_image_projection(m.model, px)


def dual_text_features(m, enc):
    """CLIP/ALIGN: tokenised texts -> (B, E) text features."""
    from .tasks.embeddings import pooled_feature

    return pooled_feature(m.model.get_text_features(**enc))


def clip_text_features(m, enc):
    """CLIP: as dual_text_features, without segment ids (CLIP's text tower takes none)."""
    return dual_text_features(m, {k: v for k, v in enc.items() if k != "token_type_ids"})


def blip_text_features(m, enc):
    """BLIP-ITM: tokenised texts -> (B, E) from the text CLS token through the contrastive projection."""
    return blip_text_projection(m.model, enc)


def learned_scale(m) -> float:
    """exp(logit_scale) (CLIP), 1 / temperature (ALIGN), else 100."""
    scale = getattr(m.model, "logit_scale", None)
    if scale is not None:
        return float(scale.detach().exp())
    temp = getattr(m.model, "temperature", None)  # ALIGN divides by a learned temperature
    return 1.0 / float(temp.detach()) if temp is not None else 100.0


BLIP_TEMPERATURE = 0.07  # BLIP's contrastive temperature (transformers does not store it)


def blip_scale(m) -> float:
    """1 / BLIP's contrastive temperature."""
    return 1.0 / BLIP_TEMPERATURE


# -- prompts and answers -------------------------------------------------------------------------------

def plain_prompt(m, texts):
    """Prompts tokenised as the model's tokenizer does (BLIP's generate drops the final [SEP] itself)."""
    from .tasks.inputs import tokenize

    return tokenize(m, texts)


def blip2_prompt(m, texts):
    """BLIP-2: the Q-Former's query placeholders first, then the left-padded text."""
    from .tasks.inputs import tokenize_with_image_tokens

    return tokenize_with_image_tokens(m, texts)


def classify_answers(m, enc, px, max_new_tokens: int) -> list[str]:
    """ViLT VQA: the answer is the top class of its classifier."""
    logits = m.model(**enc, **px).logits  # (B, num_answers)
    return [m.model.config.id2label[int(i)] for i in logits.argmax(-1)]


def generate_answers(m, enc, px, max_new_tokens: int) -> list[str]:
    """BLIP VQA: the answer decoder generates from its own start token."""
    ids = m.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           max_new_tokens=max_new_tokens, **px)
    return [" ".join(t.split()) for t in m.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def continue_answers(m, enc, px, max_new_tokens: int) -> list[str]:
    """BLIP-2: a decoder-only language model continues the prompt; the answer is what follows it."""
    ids = m.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           max_new_tokens=max_new_tokens, **px)[:, enc["input_ids"].shape[1]:]
    return [" ".join(t.split()) for t in m.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def forward_logits(model, enc, px):
    """CLIP/ALIGN training: (B, B) image x text logits from the model's own forward, scaled by its temperature."""
    return model(**enc, pixel_values=px).logits_per_image


def projection_logits(model, enc, px):
    """BLIP-ITM training: (B, B) image x text logits from the CLS tokens through the contrastive projections."""
    import torch.nn.functional as F

    img = F.normalize(blip_image_projection(model, px), dim=-1)  # (B, E)
    txt = F.normalize(blip_text_projection(model, enc), dim=-1)  # (B, E)
    return img @ txt.t() / BLIP_TEMPERATURE


def vilt_text_limit(m) -> int:
    """ViLT's text position embeddings (its tokenizer allows more)."""
    return int(getattr(m.model.config, "max_position_embeddings", 40))


# -- the table -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Adapter:
    """What one family does its own way (None: the family does not do it).

    image_features(m, pixel_values) -> (B, E), text_features(m, enc) -> (B, E): unnormalised embeddings.
    logit_scale(m) -> float: the contrastive temperature's inverse.
    pair_scores: which joint image-text head scores pairs ("blip": BLIP's ITM head over cached vision
        states, "vilt": one ViLT pass per pair), or None (the embeddings' cosine does).
    prompt(m, texts) -> enc: how prompts and questions are tokenised.
    question: how a question is phrased for the model ("{q}": as asked).
    answer(m, enc, pixel_inputs, max_new_tokens) -> list[str]: VQA answers.
    decoder_limits_new_tokens: a text decoder's position embeddings bound max_new_tokens.
    text_limit(m) -> int: a text limit beyond the tokenizer's and the text config's.
    maps: (module under mmkit.attention, function) extracting the maps; maps_need_text: False when the
        model writes its own text (a caption) to explain, and then takes decoding options; map_options: the
        other keyword options its extractor takes.
    scores: the robustness scores of the family (mmkit.train.robustness); no_shapes: how a picture with no
        shapes is asked about there ("caption" or "count"), None when it is not.
    tunes: the tasks mmkit.finetune trains (the first is the default); contrastive_logits(model, enc, px) ->
        (B, B) image x text logits for contrastive training; lora_targets: the Linear layers that get LoRA
        adapters; lora_full: task heads trained in full beside them; word_embeddings: the token embedding
        module that grows with new words.
    dual_encoder: two towers whose embeddings are compared by cosine (a prompt is embedded alone);
        joint_inputs: the processor takes the image and the text together (ViLT); pools_end_token: the text
        tower's output is read at the end token, not the first.
    scene_texts: the texts a ShapesWorld scene gives its maps in the faithfulness test ("caption",
        "questions" about colour, shape and size, or "objects": the objects' names).
    perturbation (mmkit.attention.perturbation; None: not supported): perturb_score says what the curves
        measure; scorer_state: (module, function) fn(m, enc, text, labels) -> dict, what the scorer needs beside
        the pixels; image_scorer: (module, function) fn(m, enc, px (B, C, H, W), state) -> (B,) scores.
    over the text (mmkit.attention.text_perturbation): text_methods: the map methods that rank its tokens (():
        none, the text is the output); text_state: fn(m, enc, state) -> dict added to the state; token_scorer:
        fn(m, enc, state, ids (B, T), mask (B, T)) -> (B,); token_ranking: fn(m, enc, state, t, methods) ->
        {method: (n,)}; each a (module under mmkit.attention, function) pair.
    """

    maps: tuple[str, str]
    image_features: Callable | None = None
    text_features: Callable | None = None
    logit_scale: Callable | None = None
    pair_scores: str | None = None
    prompt: Callable = plain_prompt
    question: str = "{q}"
    answer: Callable | None = None
    decoder_limits_new_tokens: bool = False
    text_limit: Callable | None = None
    maps_need_text: bool = True
    map_options: tuple[str, ...] = ()
    scores: tuple[str, ...] = ()
    no_shapes: str | None = None
    tunes: tuple[str, ...] = ()
    contrastive_logits: Callable | None = None
    lora_targets: tuple[str, ...] = ()
    lora_full: tuple[str, ...] = ()
    word_embeddings: str = "word_embeddings"
    dual_encoder: bool = False
    joint_inputs: bool = False
    pools_end_token: bool = False
    scene_texts: str = "objects"
    perturb_score: str | None = None
    scorer_state: tuple[str, str] | None = None
    image_scorer: tuple[str, str] | None = None
    text_methods: tuple[str, ...] = ()
    text_state: tuple[str, str] | None = None
    token_scorer: tuple[str, str] | None = None
    token_ranking: tuple[str, str] | None = None

    @property
    def classifies(self) -> bool:
        """Whether VQA answers are the classes of a classifier (new answers grow it) rather than generated text."""
        return self.answer is classify_answers

    @property
    def embeds(self) -> bool:
        """Whether the family has an image-text embedding space (retrieval by cosine similarity)."""
        return self.image_features is not None


BERT_QV = ("query", "value")
BLIP_QV = ("query", "value", "qkv")
P, T = "perturbation", "text_perturbation"  # the modules of mmkit.attention that hold the scorers
COS = "cosine(image, prompt)"

ADAPTERS: dict[str, Adapter] = {
    "clip": Adapter(("dual", "clip_maps"), dual_image_features, clip_text_features, learned_scale,
                    scores=("zero_shot",), tunes=("contrastive",), contrastive_logits=forward_logits,
                    lora_targets=("q_proj", "v_proj"), word_embeddings="token_embedding",
                    dual_encoder=True, pools_end_token=True, perturb_score=COS, scorer_state=(P, "dual_scorer_state"),
                    image_scorer=(P, "dual_image_scorer"), text_methods=("attention", "rollout", "relevance",
                                                                         "similarity"),
                    text_state=(T, "dual_text_state"), token_scorer=(T, "dual_token_scorer"),
                    token_ranking=(T, "clip_token_ranking")),
    "align": Adapter(("dual", "align_maps"), dual_image_features, dual_text_features, learned_scale,
                     scores=("zero_shot",), tunes=("contrastive",), contrastive_logits=forward_logits,
                     lora_targets=BERT_QV, dual_encoder=True, perturb_score=COS, scorer_state=(P, "dual_scorer_state"),
                     image_scorer=(P, "dual_image_scorer"), text_methods=("gradcam", "similarity"),
                     text_state=(T, "dual_text_state"), token_scorer=(T, "dual_token_scorer"),
                     token_ranking=(T, "align_token_ranking")),
    "blip-itm": Adapter(("cross", "blip_itm_maps"), blip_image_features, blip_text_features, blip_scale,
                        pair_scores="blip", map_options=("layer",), scores=("auc",), tunes=("itm", "contrastive"),
                        contrastive_logits=projection_logits, lora_targets=BLIP_QV, lora_full=("itm_head",),
                        scene_texts="caption", perturb_score="P(match)", scorer_state=(P, "blip_itm_scorer_state"),
                        image_scorer=(P, "blip_itm_image_scorer"), text_methods=("attention", "gradcam", "relevance"),
                        text_state=(T, "blip_text_state"), token_scorer=(T, "blip_itm_token_scorer"),
                        token_ranking=(T, "blip_itm_token_ranking")),
    "vilt-itm": Adapter(("cross", "vilt_maps"), pair_scores="vilt", text_limit=vilt_text_limit,
                        lora_targets=BERT_QV, lora_full=("rank_output",), joint_inputs=True, scene_texts="caption",
                        perturb_score="ITM score", image_scorer=(P, "vilt_itm_image_scorer"),
                        text_methods=("attention", "rollout", "relevance"), token_scorer=(T, "vilt_itm_token_scorer"),
                        token_ranking=(T, "vilt_token_ranking")),
    "vilt-vqa": Adapter(("cross", "vilt_maps"), answer=classify_answers, text_limit=vilt_text_limit,
                        scores=("color_shape",), no_shapes="count", tunes=("vqa",), lora_targets=BERT_QV,
                        lora_full=("classifier",), joint_inputs=True, scene_texts="questions",
                        perturb_score="P(answer)", scorer_state=(P, "vilt_vqa_scorer_state"),
                        image_scorer=(P, "vilt_vqa_image_scorer"),
                        text_methods=("attention", "rollout", "relevance"), token_scorer=(T, "vilt_vqa_token_scorer"),
                        token_ranking=(T, "vilt_token_ranking")),
    "blip-vqa": Adapter(("cross", "blip_vqa_maps"), answer=generate_answers, decoder_limits_new_tokens=True,
                        map_options=("max_new_tokens",), scores=("color_shape",), no_shapes="count", tunes=("vqa",),
                        lora_targets=BLIP_QV, scene_texts="questions", perturb_score="P(answer)",
                        scorer_state=(P, "blip_vqa_scorer_state"), image_scorer=(P, "blip_vqa_image_scorer"),
                        text_methods=("attention", "relevance"), text_state=(T, "blip_vqa_text_state"),
                        token_scorer=(T, "blip_vqa_token_scorer"), token_ranking=(T, "blip_vqa_token_ranking")),
    "blip-caption": Adapter(("cross", "blip_caption_maps"), decoder_limits_new_tokens=True, maps_need_text=False,
                            scores=("names", "exact"), no_shapes="caption", tunes=("caption",), lora_targets=BLIP_QV,
                            scene_texts="caption", perturb_score="log-likelihood per token of the caption",
                            scorer_state=(P, "blip_caption_scorer_state"),
                            image_scorer=(P, "blip_caption_image_scorer")),
    "blip2": Adapter(("qformer", "blip2_maps"), prompt=blip2_prompt, question="Question: {q} Answer:",
                     answer=continue_answers, maps_need_text=False),
}


def adapter(m) -> Adapter:
    """The table's row for a Loaded model (or a family name)."""
    family = m if isinstance(m, str) else m.spec.family
    if family not in ADAPTERS:
        raise ValueError(f"model family {family!r} has no row in mmkit.families.ADAPTERS")
    return ADAPTERS[family]


def attention_function(ref: tuple[str, str]) -> Callable:
    """A function of mmkit.attention named by a (module, function) entry of the table, imported on first use."""
    import importlib

    module, name = ref
    return getattr(importlib.import_module(f"mmkit.attention.{module}"), name)


def map_function(m) -> Callable:
    """The attention-map extractor of the model's family: fn(m, image, text, **options) -> AttentionMaps."""
    return attention_function(adapter(m).maps)
