"""
---
title: Input checks
nav_order: 4
summary: >
  The checks at the package's entry points: sizes given to convmixer() and
  create_model(), and the images given to a model they build.
---

# Input checks

The [paper's classes](model.md) trust their arguments, as PyTorch's own
layers do. The package checks at the doors users come in by:
[`convmixer()`](factory.md) and [`create_model()`](models.md) check the sizes,
and the model they return checks the images it is given. A wrong size or a
wrong image then fails where it is given, with one line that names it, instead
of deep inside a convolution.
"""

import torch


def is_integer(value) -> bool:
    """An `int`, but not a `bool`: `True` is an `int` to Python, but never a size."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_sizes(minimum: int, **sizes: int):
    """Each of `sizes` must be an integer (not a `bool`) of at least `minimum`."""
    for name, value in sizes.items():
        if not is_integer(value) or value < minimum:
            kind = 'positive' if minimum == 1 else 'non-negative'
            raise ValueError(f"{name} must be a {kind} integer, got {value!r}")


def check_images(x: torch.Tensor, in_channels: int, patch_size: int):
    """`x` must be `[batch_size, in_channels, height, width]`, at least a patch."""
    shape = tuple(x.shape)
    if x.dim() != 4:
        raise ValueError(f"expected images of shape [batch_size, channels, height, "
                         f"width], got a tensor with {x.dim()} dimensions {shape}")
    if shape[1] != in_channels:
        raise ValueError(f"expected {in_channels} input channels, got {shape[1]} "
                         f"(input shape {shape})")
    if shape[2] < patch_size or shape[3] < patch_size:
        raise ValueError(f"image of {shape[2]}x{shape[3]} pixels is smaller than "
                         f"one {patch_size}x{patch_size} patch")
