"""Pixel normalisation and light augmentation: the one place images become tensors.

Every model in the study (zoo, baselines, NAS candidates) is pretrained on the source set and
fine-tuned downstream with the same ImageNet mean/std, as the torchvision weights NASOA compares
against expect. Augmentation is the CIFAR-style pad-crop + horizontal flip, applied to a whole
batch at once (one gather, no per-image Python loop) so it costs little on a 2-core CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nasoa_lib.errors import InvalidDataError

if TYPE_CHECKING:  # torch loads on first use, so reading a user's images (and its errors) needs no torch
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CHUNK = 512


def to_tensor(x: np.ndarray, image_size: int, chunk_size: int = _CHUNK) -> torch.Tensor:
    """uint8 NHWC RGB -> float32 NCHW, scaled to [0, 1] and normalised with ImageNet mean/std.

    Images are bilinearly resized to ``image_size`` when they differ (antialiased when shrinking),
    ``chunk_size`` images at a time, so the float intermediates stay small next to the output.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
        raise InvalidDataError(
            f"to_tensor expects uint8 (N, H, W, 3) images, got {getattr(x, 'dtype', type(x))} "
            f"{getattr(x, 'shape', None)}",
            hint="pass ImageDataset/Task arrays (x_train, x_test) unchanged",
        )
    if image_size < 1:
        raise InvalidDataError(f"image_size={image_size}; must be >= 1", hint="use e.g. 32 or 224")
    import torch
    import torch.nn.functional as F

    n, h, w, _ = x.shape
    out = torch.empty((n, 3, image_size, image_size), dtype=torch.float32)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    resize = (h, w) != (image_size, image_size)
    for start in range(0, n, chunk_size):
        chunk = torch.from_numpy(np.array(x[start : start + chunk_size], copy=True))
        chunk = chunk.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if resize:
            chunk = F.interpolate(
                chunk,
                size=(image_size, image_size),
                mode="bilinear",
                align_corners=False,
                antialias=image_size < max(h, w),
            )
        out[start : start + chunk.shape[0]] = (chunk - mean) / std
    return out


def random_flip_crop(
    batch: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop after zero-padding by ``padding`` pixels plus a random horizontal flip (p=0.5),
    independently per image of a float NCHW ``batch``; returns a new tensor of the same shape."""
    if batch.ndim != 4:
        raise InvalidDataError(
            f"random_flip_crop expects an NCHW batch, got shape {tuple(batch.shape)}",
            hint="apply it to the output of to_tensor",
        )
    if padding < 0:
        raise InvalidDataError(f"padding={padding}; must be >= 0", hint="use 4 for 32x32 images")
    import torch
    import torch.nn.functional as F

    n, _, h, w = batch.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    off_y = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_device)
    off_x = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gen_device)
    flip = torch.rand((n,), generator=generator, device=gen_device) < 0.5
    off_y, off_x, flip = off_y.to(batch.device), off_x.to(batch.device), flip.to(batch.device)
    padded = F.pad(batch, (padding, padding, padding, padding)) if padding else batch
    rows = off_y[:, None] + torch.arange(h, device=batch.device)[None, :]
    cols = off_x[:, None] + torch.arange(w, device=batch.device)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    images = torch.arange(n, device=batch.device)[:, None, None]
    # Advanced indices around a slice put the indexed dims first: result is (N, H, W, C).
    out = padded[images, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()
