"""The image side of every captioner: pixels in, a grid of feature vectors out.

Two choices, one interface (`pixel_values(uint8)`, `forward(pixel_values) -> (B, G*G, out_dim)`):

- `PretrainedGridEncoder` (the default): the small ShapesWorld CNN of `mmkit.fusion.encoders`, pretrained
  for ~10 s to name the colour, shape and size under each cell of its 8x8 grid, then frozen. This is the
  classic recipe: Show and Tell and Show, Attend and Tell read an ImageNet-pretrained CNN; only the
  decoder learns to write. Frozen features are computed once per image, so training costs decoder steps only.
- `ConvEncoder`: a CNN of the same shape trained end to end with the decoder, from random weights.

Both add a 2-D position code to each cell, so decoders can tell "left of" from "right of".
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.images import load_image
from ..data.shapes import PIXEL_MEAN, PIXEL_STD
from ..fusion.encoders import position_2d


class PretrainedGridEncoder(nn.Module):
    """mmkit.fusion's ShapesWorld CNN, frozen: pixels in [0, 1] (B, 3, 64, 64) -> (B, 64, 64) grid features.

    Args:
        pretrain: train it now (cached per process); False builds random weights, to be overwritten by a checkpoint.
    """

    trainable = False

    def __init__(self, pretrain: bool = True):
        from ..fusion.encoders import ImageEncoder, ImageEncoderConfig, pretrain_image_encoder

        super().__init__()
        self.cnn = ImageEncoder(ImageEncoderConfig())
        if pretrain:
            src = pretrain_image_encoder()  # (cached) the per-cell colour/shape/size heads are not copied
            self.cnn.load_state_dict({k: v for k, v in src.state_dict().items() if not k.startswith("heads.")})
        self.cnn.requires_grad_(False)
        self.out_dim, self.grid = self.cnn.config.dim, 8

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: batch-norm statistics stay those of pretraining

    @staticmethod
    def pixel_values(pixels_uint8: torch.Tensor) -> torch.Tensor:
        return pixels_uint8.float() / 255  # (B, 3, S, S) in [0, 1], what the fusion encoder was trained on

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.cnn(pixel_values)  # (B, 64, out_dim), 2-D position codes included


class ConvEncoder(nn.Module):
    """A CNN trained with the decoder: pixels (B, 3, S, S) -> (B, G*G, dim), G = S / 8, learned positions added.

    Args:
        channels: widths of the three stride-2 stages; dim: width of the output features.
        mean, std: per-channel pixel statistics used to standardise the input.
    """

    trainable = True

    def __init__(self, image_size: int = 64, channels: tuple = (32, 64, 128), dim: int = 128,
                 mean=PIXEL_MEAN, std=PIXEL_STD):
        super().__init__()
        c1, c2, c3 = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), nn.ReLU(),
            nn.Conv2d(c3, dim, 3, padding=1),  # widens each cell's view to ~31 px
        )
        self.out_dim, self.grid = dim, image_size // 8
        self.pos = nn.Parameter(position_2d(self.grid, self.grid, dim))  # (G*G, dim) trainable, starts as a 2-D code
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float).view(1, 3, 1, 1), persistent=False)

    def pixel_values(self, pixels_uint8: torch.Tensor) -> torch.Tensor:
        return (pixels_uint8.float() / 255 - self.mean) / self.std  # (B, 3, S, S) standardised

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.net(pixel_values)  # (B, dim, G, G)
        x = x.flatten(2).transpose(1, 2)  # (B, G*G, dim) cells in row-major order
        return self.norm(x + self.pos)


def build_encoder(config, pretrain: bool = True) -> nn.Module:
    """The encoder a CaptionerConfig names: "pretrained" (frozen ShapesWorld CNN) or "scratch"."""
    from ..errors import InputError

    if config.encoder == "pretrained":
        if config.image_size != 64:
            raise InputError(f"image_size={config.image_size}: the pretrained encoder reads 64 px images; "
                             "use image_size=64 or encoder='scratch'")
        return PretrainedGridEncoder(pretrain)
    if config.encoder == "scratch":
        return ConvEncoder(config.image_size, tuple(config.channels), config.dim, config.mean, config.std)
    raise InputError(f"encoder={config.encoder!r}: use 'pretrained' or 'scratch'")


def images_to_uint8(images, size: int) -> torch.Tensor:
    """Images (anything `load_image` takes) -> (N, 3, size, size) uint8, resized when needed."""
    from PIL import Image

    arrs = []
    for x in images:
        im = load_image(x)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        arrs.append(np.asarray(im))
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()  # (N, 3, S, S)
