"""Task functions: caption, answer, zero_shot, embed_images, embed_texts, match, retrieve.

Each takes a `Loaded` model (or a name, loaded on first use) and one image or a list of images in any
form `load_image` accepts: one in -> one out, a list in -> a list out. Work is batched and runs on
the model's device. Bad input raises `InputError` with the fix.
"""
from .embeddings import Hit, embed_images, embed_texts, match, retrieve, zero_shot
from .generation import answer, caption, check_decoding
from .inputs import BATCH_SIZE, clean_text, fit_text

__all__ = ["BATCH_SIZE", "Hit", "answer", "caption", "check_decoding", "clean_text", "embed_images", "embed_texts",
           "fit_text", "match", "retrieve", "zero_shot"]
