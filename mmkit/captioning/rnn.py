"""Two recurrent captioners: Show and Tell (Vinyals et al., 2015) and Show, Attend and Tell (Xu et al., 2015).

Show and Tell squeezes the image into one vector, feeds it to an LSTM as its first input, then lets
the LSTM write the caption word by word. Show, Attend and Tell keeps the CNN's grid and, before every
word, computes soft attention weights over its cells from the LSTM's state; the weighted sum of cell
features (the context) joins the word embedding as the LSTM's input. Those weights are the per-word
attention maps the notebooks draw.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Captioner, CaptionerConfig, register


@dataclass
class ShowTellConfig(CaptionerConfig):
    hidden: int = 256  # LSTM state width
    layers: int = 1  # stacked LSTM layers
    dropout: float = 0.0  # on LSTM outputs; ShapesWorld has endless scenes, so little to regularise
    image_every_step: bool = False  # False: the image is only the input at step -1 (the paper);
    # True: the image vector joins every word's embedding (as in m-RNN), which learns far faster here


@register
class ShowAndTell(Captioner):
    """CNN -> one image vector -> LSTM decoder (the image is the LSTM's first input, or part of every input)."""

    kind = "show_and_tell"
    config_class = ShowTellConfig

    def __init__(self, config: ShowTellConfig | None = None, tokenizer=None, **kwargs):
        super().__init__(config, tokenizer, **kwargs)  # kwargs: seed, pretrain
        c = self.config
        cells = self.encoder.grid ** 2
        self.image_proj = nn.Linear(cells * c.dim, c.dim)  # flatten, not average: keeps where things are
        self.embed = nn.Embedding(self.vocab_size, c.dim, padding_idx=self.pad_id)
        self.lstm = nn.LSTM(c.dim * (2 if c.image_every_step else 1), c.hidden, num_layers=c.layers, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden, self.vocab_size)

    def image_vector(self, feats: torch.Tensor) -> torch.Tensor:
        return self.image_proj(feats.flatten(1))  # (B, N, D) -> (B, N*D) -> (B, D)

    def decode_train(self, feats, input_ids):
        img, words = self.image_vector(feats), self.embed(input_ids[:, :-1])  # (B, D), (B, T-1, D)
        if self.config.image_every_step:
            h, _ = self.lstm(torch.cat([words, img[:, None].expand_as(words)], dim=2))  # (B, T-1, H)
            return self.out(self.drop(h))  # (B, T-1, V)
        h, _ = self.lstm(torch.cat([img[:, None], words], dim=1))  # (B, T, H): step 0 reads the image
        return self.out(self.drop(h[:, 1:]))  # (B, T-1, V) step t read word t-1

    def init_state(self, feats):
        img = self.image_vector(feats)  # (B, D)
        if self.config.image_every_step:
            zeros = img.new_zeros(len(img), self.config.layers, self.config.hidden)  # (B, layers, H)
            return {"img": img, "h": zeros, "c": zeros}
        _, (h, c) = self.lstm(img[:, None])  # (layers, B, H) each
        return {"h": h.transpose(0, 1), "c": c.transpose(0, 1)}  # (B, layers, H): batch first for beam reordering

    def step(self, prefix, state, attention: bool = False):
        hc = (state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous())  # (layers, B, H)
        x = self.embed(prefix[:, -1:])  # (B, 1, D)
        if self.config.image_every_step:
            x = torch.cat([x, state["img"][:, None]], dim=2)  # (B, 1, 2D)
        out, (h, c) = self.lstm(x, hc)  # out: (B, 1, H)
        return self.out(out[:, 0]), {**state, "h": h.transpose(0, 1), "c": c.transpose(0, 1)}, None


@dataclass
class AttendConfig(CaptionerConfig):
    hidden: int = 256  # LSTM state width
    attn_dim: int = 128  # width of the additive attention's hidden layer
    dropout: float = 0.0  # before the output layer
    alpha_reg: float = 0.0  # "doubly stochastic" penalty sum_i (1 - sum_t alpha_ti)^2; off: most cells are background


@register
class ShowAttendTell(Captioner):
    """CNN grid -> LSTM decoder with soft (additive) attention over the grid before each word."""

    kind = "show_attend_tell"
    config_class = AttendConfig

    def __init__(self, config: AttendConfig | None = None, tokenizer=None, **kwargs):
        super().__init__(config, tokenizer, **kwargs)  # kwargs: seed, pretrain
        c = self.config
        self.embed = nn.Embedding(self.vocab_size, c.dim, padding_idx=self.pad_id)
        self.init_h, self.init_c = nn.Linear(c.dim, c.hidden), nn.Linear(c.dim, c.hidden)
        self.att_feat = nn.Linear(c.dim, c.attn_dim)  # W_a a_i, computed once per image
        self.att_hid = nn.Linear(c.hidden, c.attn_dim)  # W_h h_{t-1}
        self.att_v = nn.Linear(c.attn_dim, 1)  # e_ti = v^T tanh(W_a a_i + W_h h_{t-1})
        self.gate = nn.Linear(c.hidden, c.dim)  # beta_t: how much of the context to let in
        self.cell = nn.LSTMCell(2 * c.dim, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden + c.dim, self.vocab_size)  # deep output from h_t and the context
        self._alphas = None

    def init_state(self, feats):
        mean = feats.mean(1)  # (B, D)
        return {"feats": feats, "keys": self.att_feat(feats),  # (B, N, A)
                "h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean))}  # (B, H) each

    def step(self, prefix, state, attention: bool = False):
        h, c, feats = state["h"], state["c"], state["feats"]
        e = self.att_v(torch.tanh(state["keys"] + self.att_hid(h)[:, None])).squeeze(2)  # (B, N)
        alpha = e.softmax(-1)  # (B, N) where to look for the next word
        context = (alpha[..., None] * feats).sum(1)  # (B, D)
        context = torch.sigmoid(self.gate(h)) * context  # (B, D) gated
        h, c = self.cell(torch.cat([self.embed(prefix[:, -1]), context], dim=1), (h, c))  # (B, H)
        logits = self.out(self.drop(torch.cat([h, context], dim=1)))  # (B, V)
        return logits, {**state, "h": h, "c": c}, alpha

    def decode_train(self, feats, input_ids):
        state = self.init_state(feats)
        logits, alphas = [], []
        for t in range(input_ids.shape[1] - 1):  # teacher forcing: feed the true word t, predict t+1
            lt, state, alpha = self.step(input_ids[:, : t + 1], state)
            logits.append(lt)
            alphas.append(alpha)
        self._alphas = torch.stack(alphas, 1)  # (B, T-1, N) kept for the regulariser
        return torch.stack(logits, 1)  # (B, T-1, V)

    def loss(self, grid, input_ids):
        loss = super().loss(grid, input_ids)
        if self.config.alpha_reg > 0:
            real = (input_ids[:, 1:] != self.pad_id).float()[..., None]  # (B, T-1, 1)
            loss = loss + self.config.alpha_reg * ((1 - (self._alphas * real).sum(1)) ** 2).mean()
        return loss
