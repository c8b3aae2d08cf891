"""ShapesWorld tasks that need both modalities, as tensors: VQA and image-text matching (ITM).

Images are encoded once by the frozen image encoder; each example points at its scene's image
tokens, so training a fusion method only runs the text encoder, the fusion module and a head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import ANSWERS, ShapesWorld
from ..errors import InputError
from .encoders import WordVocab, encode_images

TASKS = {
    "vqa": "answer a question about the image (15 answers: yes/no, colours, shapes, sizes, counts)",
    "match": "does the caption describe the image? negatives swap one attribute or the relation",
}
RELATIONAL = {"vqa": "position", "match": "relation"}  # the kind of example that needs spatial relations
MATCH_LABELS = ("no", "yes")  # ITM classes: 0 = the caption is false for the image, 1 = true


@dataclass
class TaskData:
    """One task split as tensors."""

    task: str  # "vqa" | "match"
    scenes: list  # the ShapesWorld scenes
    image_emb: torch.Tensor  # (S, N, Di) image tokens of each scene
    scene_idx: torch.Tensor  # (E,) long: the scene of each example
    input_ids: torch.Tensor  # (E, T) long word ids
    attention_mask: torch.Tensor  # (E, T) bool, True on real words
    labels: torch.Tensor  # (E,) long class ids
    kinds: list  # (E,) question kind (vqa) or "match" / negative kind (match)
    texts: list  # (E,) the question or caption
    classes: tuple  # class names, index = label

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> dict:
        """The examples at idx as model inputs: input_ids, attention_mask, image_emb, labels."""
        ids, mask = self.input_ids[idx], self.attention_mask[idx]
        T = int(mask.sum(1).max())  # trim padding shared by the whole batch
        return {"input_ids": ids[:, :T], "attention_mask": mask[:, :T],
                "image_emb": self.image_emb[self.scene_idx[idx]], "labels": self.labels[idx]}


def make_task(task: str, scenes, encoder, vocab: WordVocab | None = None, image_emb: torch.Tensor | None = None) -> TaskData:
    """Turn ShapesWorld scenes into a TaskData for `task` ("vqa" or "match").

    Args:
        task: "vqa" (every QA pair of every scene) or "match" (each caption as a positive, its negative as a negative).
        scenes: a ShapesWorld or a list of its scenes.
        encoder: the frozen image encoder (pretrain_image_encoder()).
        vocab: the word vocabulary; defaults to WordVocab().
        image_emb: precomputed (S, N, Di) image tokens of `scenes` (skips encoding).
    """
    if task not in TASKS:
        raise InputError(f"task={task!r}: choose one of {', '.join(TASKS)}")
    scenes = list(scenes)
    if not scenes:
        raise InputError("no scenes given; pass e.g. ShapesWorld(500, split='train')")
    vocab = vocab or WordVocab()
    rows = []  # (scene index, text, label, kind)
    for i, s in enumerate(scenes):
        if task == "vqa":
            rows += [(i, q.question, ANSWERS.index(q.answer), q.kind) for q in s.qa]
        else:
            rows += [(i, s.caption, 1, "match"), (i, s.negative, 0, s.negative_kind)]
    ids, mask = vocab.encode([r[1] for r in rows])
    if image_emb is None:
        image_emb = encode_images(encoder, [s.image for s in scenes])  # (S, N, Di)
    return TaskData(task, scenes, image_emb, torch.tensor([r[0] for r in rows]), ids, mask,
                    torch.tensor([r[2] for r in rows]), [r[3] for r in rows], [r[1] for r in rows],
                    tuple(ANSWERS) if task == "vqa" else MATCH_LABELS)


def task_splits(task: str, encoder, n_train: int = 1500, n_test: int = 400, seed: int = 0, objects=(1, 2),
                vocab: WordVocab | None = None) -> tuple[TaskData, TaskData]:
    """(train, test) TaskData from ShapesWorld split="train" and the held-out split="test"."""
    train = make_task(task, ShapesWorld(n_train, seed=seed, objects=objects, split="train"), encoder, vocab)
    test = make_task(task, ShapesWorld(n_test, seed=seed, objects=objects, split="test"), encoder, vocab)
    return train, test
