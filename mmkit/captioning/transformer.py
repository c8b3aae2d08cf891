"""A transformer captioner: the CNN grid as "encoder states", read by a GPT-2 decoder through cross-attention.

The decoder is Hugging Face's own `GPT2LMHeadModel` built from a small `GPT2Config(add_cross_attention=True)`:
each block has causal self-attention over the words so far, then cross-attention from the words to the
image cells (`encoder_hidden_states`), then an MLP. The same call works with a real pretrained GPT-2
(`GPT2LMHeadModel.from_pretrained("gpt2", add_cross_attention=True)`), whose cross-attention layers
start untrained, the way VisionEncoderDecoderModel pairs a ViT with GPT-2.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Captioner, CaptionerConfig, register


@dataclass
class TransformerConfig(CaptionerConfig):
    layers: int = 2  # decoder blocks (self-attention, cross-attention, MLP)
    heads: int = 4  # attention heads; dim must divide by it
    mlp: int = 512  # MLP width inside each block
    dropout: float = 0.0  # GPT-2's residual, embedding and attention dropout; little to regularise here


@register
class TransformerCaptioner(Captioner):
    """CNN encoder + GPT-2 decoder with cross-attention over the image grid."""

    kind = "transformer"
    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig | None = None, tokenizer=None, **kwargs):
        from transformers import GPT2Config, GPT2LMHeadModel

        super().__init__(config, tokenizer, **kwargs)  # kwargs: seed, pretrain
        c = self.config
        gpt = GPT2Config(vocab_size=self.vocab_size, n_positions=c.max_len, n_embd=c.dim, n_layer=c.layers,
                         n_head=c.heads, n_inner=c.mlp, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
                         attn_pdrop=c.dropout, add_cross_attention=True, bos_token_id=self.bos_id,
                         eos_token_id=self.eos_id, pad_token_id=self.pad_id)
        self.decoder = GPT2LMHeadModel(gpt)

    def decode_train(self, feats, input_ids):
        """feats (B, N, D) are the "encoder_hidden_states" every block's cross-attention reads."""
        mask = (input_ids[:, :-1] != self.pad_id).long()  # (B, T-1) padding is only ever at the end
        out = self.decoder(input_ids=input_ids[:, :-1], attention_mask=mask, encoder_hidden_states=feats,
                           use_cache=False)
        return out.logits  # (B, T-1, V)

    def init_state(self, feats):
        return {"feats": feats}  # (B, N, D)

    def step(self, prefix, state, attention: bool = False):
        """Re-reads the whole prefix each step (no key/value cache: captions are short, and beams reorder freely)."""
        out = self.decoder(input_ids=prefix, encoder_hidden_states=state["feats"], use_cache=False,
                           output_attentions=attention)
        attn = None
        if attention:  # last block's cross-attention from the newest position, averaged over heads
            attn = out.cross_attentions[-1][:, :, -1].mean(1)  # (B, heads, T, N) -> (B, N)
        return out.logits[:, -1], state, attn

    def make_step(self, attention: bool = False):
        if attention:
            self.decoder.set_attn_implementation("eager")  # sdpa kernels do not return attention weights
        return super().make_step(attention)

    def attend(self, image, **options):
        """As Captioner.attend; decodes with eager attention (sdpa kernels return no weights), then switches back."""
        before = self.decoder.config._attn_implementation
        try:
            return super().attend(image, **options)
        finally:
            self.decoder.set_attn_implementation(before)
