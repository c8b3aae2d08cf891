"""Faster inference for BLIP: the same arithmetic as transformers' code up to float rounding (see the
package docstring for the other speedups).

1. BLIP's vision tower (`BlipAttention`) multiplies queries by keys, applies a softmax and multiplies by
   values in separate steps, whatever `attn_implementation` says. At 384x384 (577 tokens) that is most of
   what a caption or VQA call costs beyond the linear layers. The fused forward does it in one
   `scaled_dot_product_attention` call: BLIP-base's vision tower ran 1.27x faster on 8 images on a 2-core CPU.

2. BLIP's text cross-attention (`BlipTextSelfAttention` given image states) projects every image token to a
   key and a value in every layer: for BLIP-base that is 2 x 577 x 768 x 768 multiply-adds per layer and
   image, more than the rest of a 10-token caption costs. A caption asks only a few queries of those keys,
   so the absorbed forward moves the projections onto the queries instead (below), and never builds the keys
   and values. On a 2-core CPU this made BLIP-base's decoder 2.4x faster for 32 images, and whole captioning
   calls went from 1.29x to 1.45-1.73x the transformers pipeline (benchmarks/tasks.py).

3. For every generated token, BLIP's text decoder (`BlipTextLMHeadModel`) builds attention masks, wraps its
   cache in a new object and goes through some fifteen module calls per layer. A small decoder spends much of
   its time there: ~2.5 ms per token for the bundled 2-layer, 128-wide captioner on 32 images. The lean
   forward runs the same layers from the same weights, with one `scaled_dot_product_attention` call for the
   self-attention. On a 2-core CPU that decoder became 1.17x faster (10 tokens for 32 images) and its whole
   captioning calls 1.11x; BLIP-base's decoder, whose time is mostly its linear layers, 1.03x. It is used for
   generate's plain inference steps only: anything else (training, losses, attention maps, padding) runs
   transformers' forward.

4. Around those steps, `generate` prepares inputs, runs logits processors and stopping criteria and checks
   signatures for every token. For plain greedy captioning none of that changes the result, and
   `greedy_caption` loops over the decoder itself: the bundled captioner's calls on 32 images became 1.14x
   faster. `mmkit.caption` uses it only where `can_decode_greedily` says the result is the same.


7. One image often fills several rows of a batch: sampled captions of one image, several questions about it,
   each scene's questions in an evaluation. BLIP's and BLIP-2's vision towers (`BlipVisionModel`,
   `Blip2VisionModel`) encode every row. The distinct forward finds rows with the same pixels (a probe of 256
   values, then an exact comparison), encodes each image once and gives every row its image's states. On a
   2-core CPU, A/B with only this switched: 16 sampled captions of one image with BLIP-base 10.3 -> 1.8 s
   (5.7x), 8 questions about one image with BLIP-VQA-base 5.3 -> 1.3 s (4.0x), the bundled models 1.6x (16
   samples; 40 scenes' 318 questions). The task functions also load and preprocess an image object that
   appears several times only once (tasks/inputs.py).

The absorbed cross-attention, for one head h with key/value weights Wk_h, Wv_h (d x E) and biases bk_h, bv_h,
queries q (Lq x d) and image states X (S x E):

    scores = q (X Wk_h^T + bk_h)^T = (q Wk_h) X^T + q bk_h^T
    out    = P (X Wv_h^T + bv_h)   = (P X) Wv_h^T + bv_h          (rows of P = softmax(scores) sum to 1)

q bk_h^T is the same for every image token of a query row, so the softmax ignores it. Per call this costs
Lq (D E + H S E) multiply-adds against S E D for projecting the keys and values (D = H d), so it is used only
while Lq stays below that break-even (~60 queries over BLIP-base's 577 image tokens), and never when the
keys and values are already cached. Past ~60 generated tokens a cached projection would have been cheaper;
captions and answers are far shorter.
"""
from __future__ import annotations


def _unhandled(kwargs, handled) -> bool:
    """Whether a call gives a keyword outside `handled` a value (not None or False): the faster forward does not
    know what it means, so transformers' forward must run and see it."""
    return any(v is not None and v is not False and k not in handled for k, v in kwargs.items())


def fused_forward(self, hidden_states, *args, **kwargs):
    """BlipAttention.forward in one scaled_dot_product_attention call (module docstring, 1.); returns (output, None).

    Runs transformers' forward in training, for attention weights, and for any argument it does not handle."""
    import torch

    if self.training or args or kwargs.get("output_attentions") or _unhandled(kwargs, ()):
        return type(self).forward(self, hidden_states, *args, **kwargs)  # anything but plain inference: as written
    b, n, d = hidden_states.shape
    q, k, v = self.qkv(hidden_states).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B, H, N, d/H)
    return self.projection(out.transpose(1, 2).reshape(b, n, d)), None


def absorbed_forward(self, hidden_states, *args, **kwargs):
    """BlipTextSelfAttention.forward with the key/value projections moved onto the queries (module docstring).

    transformers calls it with keywords only; any call this does not recognise runs the original forward."""
    x = kwargs.get("encoder_hidden_states")  # (B, S, E) image states; None for self-attention
    cache = _given_cache(kwargs)
    if args or _unhandled(kwargs, _CROSS_KEYWORDS) or not _absorb(self, hidden_states, x, cache):
        return type(self).forward(self, hidden_states, *args, **kwargs)
    return _absorbed(self, hidden_states, x, kwargs.get("encoder_attention_mask"))


# what the absorbed forward reads (transformers' cross-attention replaces attention_mask by encoder_attention_mask
# and returns the probabilities whether or not output_attentions asks for them)
_CROSS_KEYWORDS = {"encoder_hidden_states", "encoder_attention_mask", "attention_mask", "past_key_values", "cache",
                   "output_attentions"}


def _absorbed(self, hidden_states, x, mask):
    """(context (B, Lq, D), attention probabilities (B, H, Lq, S)) of cross-attention from hidden_states to x.

    mask: None or additive, broadcastable to (B, H, Lq, S), as transformers' code applies to cross-attention."""
    b, lq, _ = hidden_states.shape
    h, d = self.num_attention_heads, self.attention_head_size
    s, e = x.shape[1], x.shape[2]
    # heads as the batch of the weight products (a (B, H, ..) @ (H, ..) broadcast would copy the weights B times)
    q = self.query(hidden_states).view(b * lq, h, d).transpose(0, 1)  # (H, B Lq, d)
    q = (q @ self.key.weight.view(h, d, e)).view(h, b, lq, e).transpose(0, 1).reshape(b, h * lq, e)  # q Wk_h
    scores = (q @ x.transpose(1, 2)).view(b, h, lq, s) / d ** 0.5
    if mask is not None:
        scores = scores + mask.to(scores.device)
    probs = scores.softmax(dim=-1)
    px = (probs.view(b, h * lq, s) @ x).view(b, h, lq, e).transpose(0, 1).reshape(h, b * lq, e)  # P X
    out = px @ self.value.weight.view(h, d, e).transpose(1, 2) + self.value.bias.view(h, 1, d)  # (H, B Lq, d)
    return out.view(h, b, lq, d).permute(1, 2, 0, 3).reshape(b, lq, h * d), probs


def _absorb(self, hidden_states, encoder_hidden_states, cache) -> bool:
    """Whether the absorbed cross-attention is the cheaper, equivalent way for this call."""
    if encoder_hidden_states is None or self.training or self.key.bias is None or self.value.bias is None:
        return False  # self-attention, dropout, or weights the derivation does not cover
    if cache is not None and (not hasattr(cache, "is_updated") or cache.is_updated.get(self.layer_idx)):
        return False  # keys and values already projected and cached (reuse them), or a cache this does not know
    lq, (s, e) = hidden_states.shape[1], encoder_hidden_states.shape[1:]
    heads, dim = self.num_attention_heads, self.all_head_size
    return lq * (dim * e + heads * s * e) < s * e * dim


def _given_cache(kwargs):
    """The cache a BLIP text module was called with, under either name (`past_key_values` up to transformers 5.23,
    `cache` from 5.24), or None."""
    return kwargs.get("cache", kwargs.get("past_key_values"))


def cache_keyword(module) -> str:
    """The cache keyword of a BLIP text module's forward: `past_key_values` up to transformers 5.23, `cache` from
    5.24."""
    import inspect

    return "cache" if "cache" in inspect.signature(type(module).forward).parameters else "past_key_values"


# the keywords of transformers' generate step to BlipTextLMHeadModel (others must be None or False)
_STEP_KEYWORDS = {"input_ids", "attention_mask", "position_ids", "encoder_hidden_states", "encoder_attention_mask",
                  "past_key_values", "cache", "use_cache", "logits_to_keep", "is_decoder", "return_dict"}


def decoder_forward(self, *args, **kwargs):
    """BlipTextLMHeadModel.forward for one step of generate's plain inference, in fewer tensor operations.

    transformers builds masks, wraps the cache and makes some fifteen module calls per layer for every token; at
    caption sizes that costs more than the arithmetic (module docstring, 3.). This computes the same layers
    from the same weights. Any other call (training, labels, attention maps, padded prompts) runs the original."""
    import torch
    from transformers import DynamicCache
    from transformers.modeling_outputs import CausalLMOutputWithCrossAttentions as Out

    ids, x = kwargs.get("input_ids"), kwargs.get("encoder_hidden_states")  # (B, L) new tokens, (B, S, E) image
    cache = _given_cache(kwargs)
    mask, x_mask = kwargs.get("attention_mask"), kwargs.get("encoder_attention_mask")  # (B, past + L), (B, S)
    emb = self.bert.embeddings
    plain = (not args and not self.training and ids is not None and x is not None and type(cache) is DynamicCache
             and all(v is None or v is False or k in _STEP_KEYWORDS for k, v in kwargs.items())
             and kwargs.get("use_cache") is not False and kwargs.get("is_decoder", True) is not False
             and kwargs.get("return_dict") is not False
             and getattr(emb, "position_embedding_type", "absolute") == "absolute"
             and hasattr(self.bert.encoder.layer[0], "crossattention"))
    past = cache.get_seq_length() if plain else 0
    if (not plain or (ids.shape[1] > 1 and past) or any(m is not None and not bool(m.all()) for m in (mask, x_mask))):
        # not a step this reproduces: transformers' code. Padding in x_mask is among them: transformers 5.23 drops
        # that mask before the cross-attention (BLIP VQA's padded questions), and a later version may not.
        return type(self).forward(self, *args, **kwargs)
    b, lq = ids.shape
    pos = kwargs.get("position_ids")
    pos = emb.position_ids[:, past:past + lq] if pos is None else pos  # (1 or B, L)
    h = emb.LayerNorm(emb.word_embeddings(ids) + emb.position_embeddings(pos))  # (B, L, D)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for i, layer in enumerate(self.bert.encoder.layer):
        a = layer.attention.self
        heads = (b, -1, a.num_attention_heads, a.attention_head_size)  # (B, L, H, d) -> transposed to (B, H, L, d)
        q, k, v = (f(h).view(heads).transpose(1, 2) for f in (a.query, a.key, a.value))
        k, v = cache.update(k, v, i)  # (B, H, past + L, d)
        ctx = sdpa(q, k, v, is_causal=lq > 1).transpose(1, 2).reshape(b, lq, -1)  # L > 1 only with nothing past
        h = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + h)
        c = layer.crossattention.self
        if _absorb(c, h, x, None):
            ctx = _absorbed(c, h, x, None)[0]
        else:
            heads = (b, -1, c.num_attention_heads, c.attention_head_size)
            q, k, v = (f(y).view(heads).transpose(1, 2) for f, y in ((c.query, h), (c.key, x), (c.value, x)))
            ctx = sdpa(q, k, v).transpose(1, 2).reshape(b, lq, -1)
        h = layer.crossattention.output.LayerNorm(layer.crossattention.output.dense(ctx) + h)
        up = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(h))  # (B, L, 4 D)
        h = layer.output.LayerNorm(layer.output.dense(up) + h)
    keep = kwargs.get("logits_to_keep") or 0
    logits = self.cls(h[:, -keep:] if isinstance(keep, int) else h[:, keep])  # (B, L or keep, vocab)
    name = "cache" if "cache" in Out.__dataclass_fields__ else "past_key_values"  # renamed in transformers 5.24
    return Out(logits=logits, **{name: cache})


# generation settings that cannot change greedy decoding with explicit max_new_tokens, eos and pad ids
_GREEDY_NEUTRAL = {"bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id", "max_length",
                   "max_new_tokens", "do_sample", "num_beams", "use_cache", "output_attentions", "output_hidden_states",
                   "transformers_version", "temperature", "top_k", "top_p", "typical_p", "min_p", "top_h",
                   "epsilon_cutoff", "eta_cutoff", "length_penalty", "early_stopping", "compile_config",
                   "disable_compile", "cache_implementation"}


def can_decode_greedily(model) -> bool:
    """Whether greedy_caption reproduces model.generate (greedy): a BLIP captioner with the lean decoder step
    whose decoder's generation config sets nothing beyond _GREEDY_NEUTRAL (no repetition penalty, no banned
    words, no minimum length...); any such setting is left to generate."""
    from transformers import GenerationConfig

    from .. import config

    if (not config.speedups_enabled() or type(model).__name__ != "BlipForConditionalGeneration"
            or "forward" not in vars(model.text_decoder)):
        return False
    default = GenerationConfig()
    return all(k.startswith("_") or k in _GREEDY_NEUTRAL or v == getattr(default, k, None)
               for k, v in vars(model.text_decoder.generation_config).items())


def greedy_caption(model, pixel_values, input_ids=None, max_new_tokens: int = 30, min_new_tokens: int = 0,
                   image_states=None):
    """What BlipForConditionalGeneration.generate returns for greedy decoding, without generate's per-token
    bookkeeping (module docstring, 4.); only for models where can_decode_greedily(model) holds.

    Args:
        pixel_values: (B, 3, H, W) preprocessed images.
        input_ids: (B, T) tokenized prompt ([CLS] ... [SEP], no padding), or None.
        image_states: (B, S, E) the vision tower's last hidden states of pixel_values when the caller has them
            already (the attention maps do), so that the tower does not run twice.
    Returns:
        (B, T' + new) token ids: BOS, the prompt, then the caption; pad ids after a caption's end."""
    import torch
    from transformers import DynamicCache

    cfg, dec = model.config.text_config, model.text_decoder
    x = model.vision_model(pixel_values=pixel_values)[0] if image_states is None else image_states  # (B, S, E)
    b = x.shape[0]
    if input_ids is None:
        ids = torch.full((b, 1), cfg.bos_token_id, dtype=torch.long, device=x.device)  # (B, 1)
    else:  # as generate: BOS in place of [CLS], the final [SEP] dropped
        ids = input_ids[:, :-1].clone()  # (B, T - 1)
        ids[:, 0] = cfg.bos_token_id
    key = cache_keyword(dec)
    cache, out, new = DynamicCache(), [ids], ids
    done = torch.zeros(b, dtype=torch.bool, device=x.device)  # (B,) captions that have ended
    for i in range(max_new_tokens):
        logits = dec(input_ids=new, encoder_hidden_states=x, use_cache=True, **{key: cache}).logits[:, -1].float()
        if i < min_new_tokens:
            logits[:, cfg.sep_token_id] = float("-inf")  # no end before min_new_tokens
        new = logits.argmax(-1).masked_fill(done, cfg.pad_token_id)[:, None]  # (B, 1)
        out.append(new)
        done |= new[:, 0] == cfg.sep_token_id
        if bool(done.all()):
            break
    return torch.cat(out, dim=1)


def distinct_forward(self, *args, **kwargs):
    """BlipVisionModel / Blip2VisionModel forward that encodes each distinct image of a batch once (module
    docstring, 7.), and gives every row the states of its image.

    Runs the original for one image, while gradients are recorded, in training, and when attentions, hidden
    states or a tuple are asked for."""
    import torch

    px = args[0] if len(args) == 1 else kwargs.get("pixel_values")
    if (len(args) > 1 or px is None or len(px) < 2 or self.training or torch.is_grad_enabled()
            or kwargs.get("output_attentions") or kwargs.get("output_hidden_states")
            or kwargs.get("return_dict") is False):
        return type(self).forward(self, *args, **kwargs)
    first = _first_equal_rows(px)
    if first is None:
        return type(self).forward(self, *args, **kwargs)
    keep = sorted(set(first))  # the rows to encode: each image's first
    where = {row: i for i, row in enumerate(keep)}
    rest = {k: v for k, v in kwargs.items() if k != "pixel_values"}
    out = type(self).forward(self, pixel_values=px[keep], **rest)
    back = torch.tensor([where[row] for row in first], device=px.device)  # (B,) each row's place among `keep`
    for k, v in list(out.items()):
        if torch.is_tensor(v):
            out[k] = v[back]  # (B, ...)
    return out


def _first_equal_rows(x) -> list | None:
    """For each row of x (B, ...), the index of the first row equal to it; None when all rows differ."""
    import torch

    flat = x.reshape(len(x), -1)
    probe = flat[:, :: max(1, flat.shape[1] // 256)].float().cpu().numpy()  # equal rows have equal probes
    first, seen = list(range(len(x))), {}
    for i, row in enumerate(probe):
        same = seen.setdefault(row.tobytes(), [])
        first[i] = next((j for j in same if torch.equal(flat[j], flat[i])), i)
        if first[i] == i:
            same.append(i)
    return None if first == list(range(len(x))) else first
