"""Image captioning from scratch: three small captioners, one decoding routine, SCST, hallucination.

    from mmkit.captioning import ShowAndTell, ShowAttendTell, TransformerCaptioner, FitConfig
    model = TransformerCaptioner()
    history = model.fit(images, captions, FitConfig(steps=600))
    model.generate(images, num_beams=3)
"""
from ..viz.captions import plot_losses
from .base import Captioner, CaptionerConfig, FitConfig, load_captioner
from .decoding import beam_search, decode, greedy_or_sample
from .evaluate import comparison_table, evaluate_captioner, plot_comparison, plot_word_attention, score_captions
from .hallucination import hallucination_rate, mentioned_objects
from .scst import SCSTConfig, scst
from .rnn import AttendConfig, ShowAndTell, ShowAttendTell, ShowTellConfig
from .transformer import TransformerCaptioner, TransformerConfig

__all__ = ["Captioner", "CaptionerConfig", "FitConfig", "load_captioner", "plot_losses", "decode", "beam_search",
           "greedy_or_sample", "ShowAndTell", "ShowTellConfig", "ShowAttendTell", "AttendConfig",
           "TransformerCaptioner", "TransformerConfig", "evaluate_captioner", "score_captions", "comparison_table",
           "plot_comparison", "plot_word_attention", "hallucination_rate", "mentioned_objects", "SCSTConfig", "scst"]
