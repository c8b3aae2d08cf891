"""One batch of `Example`s -> one scalar loss, for each task and model family that `finetune` trains.

- caption (BLIP captioner): teacher-forced cross-entropy of [DEC] caption [SEP] given the image;
- vqa (BLIP-VQA): answer-generation cross-entropy given the image and question; (ViLT-VQA): cross-entropy
  over its answer classes;
- contrastive (CLIP, ALIGN): the symmetric InfoNCE loss, where examples with the same text count as matches;
- itm (BLIP-ITM): matching cross-entropy on (image, its text) and (image, another example's text) pairs.
"""
from __future__ import annotations

TASKS = ("caption", "vqa", "itm", "contrastive")  # which family trains which: mmkit.families.ADAPTERS' `tunes`


def pixels(loaded, images, device):
    """(B, 3, H, W) float pixel values of PIL images, as the model's image processor makes them."""
    out = loaded.processor.image_processor(images=list(images), return_tensors="pt")
    return out["pixel_values"].to(device)


def tokens(loaded, texts, device, max_length: int | None = None) -> dict:
    """Padded ids (B, T) and attention mask (B, T) of texts, cut at the model's text limit."""
    tok = loaded.processor.tokenizer
    limit = max_length or min(int(getattr(tok, "model_max_length", 512) or 512), 512)
    enc = tok(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def _labels(ids, mask):
    """Decoder labels: ids with padding ignored (-100); the model shifts them itself."""
    return ids.masked_fill(mask == 0, -100)  # (B, T)


def caption_loss(model, loaded, batch, px):
    """BLIP captioning cross-entropy; px (B, 3, H, W), decoder input [DEC] caption [SEP]."""
    enc = tokens(loaded, [e.text for e in batch], px.device)
    ids = enc["input_ids"].clone()  # (B, T)
    ids[:, 0] = model.config.text_config.bos_token_id  # [CLS] -> the decoder's start token, as generate does
    return model(pixel_values=px, input_ids=ids, attention_mask=enc["attention_mask"],
                 labels=_labels(ids, enc["attention_mask"])).loss


def blip_vqa_loss(model, loaded, batch, px):
    """BLIP-VQA answer cross-entropy: vision -> question encoder (cross-attending) -> answer decoder."""
    import torch

    keys = [e.key for e in batch]
    first = {k: keys.index(k) for k in dict.fromkeys(keys)}  # each distinct picture's first row
    rows = torch.tensor([list(first).index(k) for k in keys], device=px.device)  # (B,) row -> its picture
    image = model.vision_model(pixel_values=px[list(first.values())]).last_hidden_state[rows]  # (B, 1+P, D)
    q = tokens(loaded, [e.question for e in batch], px.device)
    question = model.text_encoder(input_ids=q["input_ids"], attention_mask=q["attention_mask"],
                                  encoder_hidden_states=image,
                                  encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long, device=px.device)
                                  ).last_hidden_state  # (B, Tq, D)
    a = tokens(loaded, [e.answer for e in batch], px.device)
    ids = a["input_ids"].clone()  # (B, Ta)
    ids[:, 0] = model.config.text_config.bos_token_id
    # generate lets the decoder see every question position (padding included): train it the same way
    return model.text_decoder(input_ids=ids, attention_mask=a["attention_mask"], encoder_hidden_states=question,
                              encoder_attention_mask=torch.ones_like(q["attention_mask"]),
                              labels=_labels(ids, a["attention_mask"]), reduction="mean").loss


def vilt_vqa_loss(model, loaded, batch, px):
    """ViLT-VQA cross-entropy over its answer classes (finetune first adds the training answers it lacks). A
    validation answer that is no class (never in training) is left out of the loss (-100); VQA accuracy counts it
    wrong. A batch of only such answers gives a zero loss."""
    import torch

    enc = tokens(loaded, [e.question for e in batch], px.device, max_length=model.config.max_position_embeddings)
    ids = model.config.label2id
    target = torch.tensor([ids.get(e.answer, -100) for e in batch], device=px.device)  # (B,)
    logits = model(**enc, pixel_values=px).logits  # (B, A)
    if bool((target == -100).all()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits, target, ignore_index=-100)


def _soft_targets(texts, device):
    """(B, B) rows summing to 1 over the examples whose text equals row i's (duplicates are matches)."""
    import torch

    same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float, device=device)
    return same / same.sum(1, keepdim=True)


def contrastive_loss(model, loaded, batch, px):
    """Symmetric InfoNCE on the model's own similarity logits (CLIP, ALIGN; BLIP-ITM's projections)."""
    import torch.nn.functional as F

    from ..families import adapter

    texts = [e.text for e in batch]
    enc = tokens(loaded, texts, px.device)
    logits = adapter(loaded).contrastive_logits(model, enc, px)  # (B, B) image x text, scaled
    target = _soft_targets(texts, px.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def itm_loss(model, loaded, batch, px, rng=None):
    """BLIP-ITM: (image, its text) -> match, (image, a different text of the batch) -> no match."""
    import random

    import torch

    rng = rng or random.Random(0)
    texts = [e.text for e in batch]
    other = []
    for t in texts:
        pool = [u for u in texts if u != t]
        other.append(rng.choice(pool) if pool else None)
    rows = [i for i, o in enumerate(other) if o is not None]
    all_texts = texts + [other[i] for i in rows]
    enc = tokens(loaded, all_texts, px.device)
    img = torch.cat([px, px[rows]])  # (B + B', 3, H, W)
    logits = model(**enc, pixel_values=img, use_itm_head=True).itm_score  # (B + B', 2)
    target = torch.cat([torch.ones(len(texts)), torch.zeros(len(rows))]).long().to(px.device)
    return torch.nn.functional.cross_entropy(logits, target)


def loss_fn(task: str, row):
    """The loss function of a task for a family's row of mmkit.families.ADAPTERS: f(model, loaded, batch, px) ->
    scalar tensor."""
    if task == "caption":
        return caption_loss
    if task == "vqa":
        return vilt_vqa_loss if row.classifies else blip_vqa_loss
    if task == "contrastive":
        return contrastive_loss
    return itm_loss
