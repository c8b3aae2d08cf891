"""Image preprocessing in one pass for the PIL image processors, bit for bit the processor's pixels.

6. The PIL image processors (used where torchvision is not installed) go through each image alone: to a
   numpy array, back to PIL to resize, then a float64 rescale, a normalisation and a channel move, each a new
   array. `pil_pixels` resizes with the same PIL call, stacks the bytes and looks each byte up in a table of
   256 values per channel computed by the processor's own arithmetic, so the pixels are bit for bit the
   processor's. For 32 images on a 2-core CPU: 2.6 -> 0.8 ms for 64x64 scenes, about 1.5x faster at
   BLIP-base's 384 x 384 and 1.7x at CLIP's 224 x 224 (18 images, photos among them).
"""
from __future__ import annotations


def pil_pixels(processor, images):
    """processor(images=images, return_tensors="pt")["pixel_values"] for RGB PIL images, in one pass (module
    docstring, 6.); None where this cannot promise the processor's exact numbers, and the caller runs it.

    Taken for transformers' PIL-backend image processors that keep the backend's own steps (resize to a fixed
    size or by the shortest edge, centre crop, rescale, normalise; no padding): BLIP's and CLIP's, not ViLT's."""
    import numpy as np
    import torch
    from PIL import Image

    from .. import config

    if not config.speedups_enabled():
        return None
    try:
        from transformers.image_processing_backends import PilBackend
        from transformers.image_transforms import get_resize_output_image_size
        from transformers.image_utils import ChannelDimension
    except ImportError:  # a transformers version without this backend: the processor decides
        return None
    p, cls = processor, type(processor)
    if (getattr(p, "backend", None) != "pil" or not images
            or any(getattr(cls, f, None) is not getattr(PilBackend, f, 0) for f in _PIL_STEPS)
            or getattr(p, "do_pad", None) or not p.do_rescale or not isinstance(p.resample, int)
            or (p.do_normalize and any(np.size(v) not in (1, 3) for v in (p.image_mean, p.image_std)))
            or any(not isinstance(im, Image.Image) or im.mode != "RGB" for im in images)):
        return None
    size, crop = _size(p.size if p.do_resize else None), _size(p.crop_size if p.do_center_crop else None)
    if ((p.do_resize and size is None) or (p.do_center_crop and (crop is None or crop[0] is None))
            or ((size is None or size[0] is None) and not p.do_center_crop)):
        return None  # a size rule not covered here, or sizes that could differ between images

    def one(im):  # (H, W, 3) uint8 array, as the processor's resize and crop leave it
        if p.do_resize:
            hw = size if size[0] is not None else get_resize_output_image_size(
                np.broadcast_to(np.uint8(0), (3, im.height, im.width)), size=size[1], default_to_square=False,
                input_data_format=ChannelDimension.FIRST)
            im = im.resize(hw[::-1], resample=p.resample)  # PIL returns a copy when the size is already right
        a = np.asarray(im)
        if p.do_center_crop:
            (ch, cw), (h, w) = crop, a.shape[:2]
            if ch > h or cw > w:
                return None  # the processor pads here
            a = a[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        return a

    arrays = [one(im) for im in images]
    if any(a is None or a.shape != arrays[0].shape for a in arrays):
        return None
    # A byte has 256 values, so each channel's rescale and normalisation is a table of 256 floats, computed by
    # the processor's arithmetic: a float64 product rounded to float32, then (x - mean) / std in float32.
    table = (torch.arange(256, dtype=torch.float64) * p.rescale_factor).float().expand(3, 256)
    if p.do_normalize:
        mean, std = (torch.tensor(v, dtype=torch.float32).reshape(-1, 1) for v in (p.image_mean, p.image_std))
        table = (table - mean) / std
    table = table.contiguous().numpy()  # (3, 256)
    a = np.stack(arrays)  # (B, H, W, 3) uint8
    out = np.empty((a.shape[0], 3, *a.shape[1:3]), dtype=np.float32)  # (B, 3, H, W)
    for c in range(3):
        out[:, c] = table[c][a[..., c]]  # (np.take was as fast in some processes and 5x slower in others)
    return torch.from_numpy(out)


# what a processor class may not replace for pil_pixels to stand in for it (each is PilBackend's or inherited by it)
_PIL_STEPS = ("__call__", "preprocess", "_preprocess_image_like_inputs", "_preprocess", "process_image", "resize",
              "center_crop", "rescale", "normalize")


def _size(s):
    """(height, width) for a fixed size, (None, edge) for a shortest edge alone, None for any other rule or none;
    read in the order PilBackend.resize reads them."""
    if s is None:
        return None
    get = s.get if isinstance(s, dict) else (lambda k: getattr(s, k, None))
    if get("shortest_edge"):
        return None if get("longest_edge") else (None, int(get("shortest_edge")))
    if get("max_height") or get("max_width") or not (get("height") and get("width")):
        return None
    return int(get("height")), int(get("width"))

