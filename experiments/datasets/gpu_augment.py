r"""
---
title: Batched data augmentation
nav_order: 2
summary: >
  Flip, random crop and RandAugment done on a whole batch at once with tensor
  math, on the GPU or the CPU, each image drawing its own operations: so the data
  loader never starves a fast GPU.
---

# Batched data augmentation

The CIFAR-10 recipe augments every training image with a horizontal flip and
[RandAugment](https://arxiv.org/abs/1909.13719) with 2 operations at magnitude
12 (of 31 bins). Done the usual way, one image at a time in 2 data loader
worker processes, that pipeline delivered 1148 images/s on a 2-core CPU, 0.87
ms an image (the data pipelines alone, on the
[Performance page](../../performance.html)). That keeps up with the CPU's own
training step, which is much slower, but a GPU trains ConvMixer-256/8 on many
times more images a second than a few cores can augment that way.

Here the whole batch is augmented at once, by the same device that trains on it.
The training set lives on the device as one `uint8` tensor, a batch is an index
into it, and this module turns the `uint8` batch `[batch_size, 3, height, width]`
into the augmented, normalised `float32` batch. Every image still draws its
own random operations and signs: the randomness is *per sample*, only the
arithmetic is batched. There is no Python loop over the images:

* **geometric operations** (shear, translation, rotation, and the random crop)
  are affine maps of the pixel grid. Each image gets its own $2 \times 3$ matrix
  (the identity when its operation is not geometric), and one
  `affine_grid` + `grid_sample` call moves all images at once;
* **colour operations** (brightness, saturation, contrast, sharpness, posterize,
  solarize, autocontrast, equalize) are elementwise or per-image statistics.
  Each is computed for the whole batch, and `torch.where` keeps it only for the
  images that drew it. That computes every colour operation for every image,
  about ten cheap elementwise passes over the batch, which is far less work than
  synchronising with the host to gather the images of each operation.

The operations, their magnitudes and sign conventions follow torchvision's
`RandAugment` on `uint8` images, and the tests compare every operation with
`torchvision.transforms.v2.functional`. Between operations the images stay on
the `uint8` grid of values (as `float32` holding whole numbers from 0 to 255),
truncated like torchvision's `uint8` kernels truncate, so that thresholds such as
solarize's and the histograms of equalize see what they would see on `uint8`
images. Nearest-neighbour sampling and black fill, as RandAugment's defaults.

Random numbers come from PyTorch's global generator *of the batch's device*
(`torch.cuda` for a batch on the GPU), so saving and restoring
`torch.get_rng_state()` / `torch.cuda.get_rng_state()` in a checkpoint also
restores the augmentation's random stream.

This file depends only on `torch` and the Python standard library.
"""

import math
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# ## The operations
#
# The 14 operations of RandAugment, in torchvision's order. An image draws each of
# its `num_ops` operations uniformly from this list, independently, so it may draw
# the same one twice.
OP_NAMES: Tuple[str, ...] = (
    'Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate',
    'Brightness', 'Color', 'Contrast', 'Sharpness', 'Posterize', 'Solarize',
    'AutoContrast', 'Equalize',
)
OP_INDEX: Dict[str, int] = {name: i for i, name in enumerate(OP_NAMES)}

# Operations whose magnitude gets a random sign (each image draws its own):
# a shear to the left or to the right, brighter or darker, and so on.
SIGNED_OPS = ('ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate',
              'Brightness', 'Color', 'Contrast', 'Sharpness')

# Weights of the red, green and blue channels in a grey level, as torchvision uses.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)


def op_magnitudes(magnitude: int, num_bins: int, height: int, width: int) -> Dict[str, float]:
    r"""
    ## Magnitudes of the operations

    RandAugment splits the range of each operation into `num_bins` equally spaced
    strengths and uses bin number `magnitude`, the same for every operation. With
    31 bins, bin 12 of a $32 \times 32$ image gives a shear of $0.12$, a
    translation of $0.4 \cdot \frac{150}{331} \cdot 32 \approx 5.8$ pixels
    (applied as 5 whole pixels), a rotation of $12°$, enhancement factors
    $1 \pm 0.36$, posterize to 6 bits and a solarize threshold of 153.
    """
    if not 0 <= magnitude < num_bins:
        raise ValueError(f"magnitude must be in 0..{num_bins - 1} for {num_bins} bins, got {magnitude}")
    # Position of the bin along each operation's range, from 0 to 1.
    t = magnitude / (num_bins - 1) if num_bins > 1 else 0.0
    return {
        'Identity': 0.0,
        'ShearX': 0.3 * t,
        'ShearY': 0.3 * t,
        'TranslateX': 150.0 / 331.0 * width * t,
        'TranslateY': 150.0 / 331.0 * height * t,
        'Rotate': 30.0 * t,
        'Brightness': 0.9 * t,
        'Color': 0.9 * t,
        'Contrast': 0.9 * t,
        'Sharpness': 0.9 * t,
        # The number of bits kept falls from 8 to 4 in 5 rounded steps.
        'Posterize': float(8 - round(magnitude / ((num_bins - 1) / 4))) if num_bins > 1 else 8.0,
        'Solarize': 255.0 * (1.0 - t),
        'AutoContrast': 0.0,
        'Equalize': 0.0,
    }


def _per_image(values: torch.Tensor) -> torch.Tensor:
    # `[batch_size]` → `[batch_size, 1, 1, 1]`, to broadcast over channels and pixels.
    return values.view(-1, 1, 1, 1)


def _to_levels(x: torch.Tensor) -> torch.Tensor:
    # Back onto the `uint8` grid: clamp to $[0, 255]$ and truncate, as a cast to
    # `uint8` does.
    return x.clamp(0, 255).floor()


def _blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    # The enhancement operations all interpolate (or extrapolate, for factors above 1)
    # between the image and a "degenerate" version of it:
    # $\text{factor} \cdot x + (1 - \text{factor}) \cdot \text{degenerate}$.
    factor = _per_image(factor)
    return _to_levels(factor * x + (1 - factor) * degenerate)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """
    Grey levels `[batch_size, 1, height, width]` of RGB images, truncated to whole levels.
    """
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).floor().unsqueeze(1)


# ## Colour operations
#
# Each takes images `x` of shape `[batch_size, 3, height, width]` with whole-number
# values in $[0, 255]$, and a per-image parameter of shape `[batch_size]`.

def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Brightness: blend with a black image."""
    return _blend(x, torch.zeros_like(x), factor)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Colour (saturation): blend with the image's own grey levels."""
    return _blend(x, grayscale(x), factor)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Contrast: blend with a flat image at the image's mean grey level."""
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, factor)


def adjust_sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    r"""
    Sharpness: blend with a blurred image. The blur is a $3 \times 3$ kernel with
    weight 5 in the centre and 1 around it (divided by 13), applied to the inner
    pixels only; the one-pixel border is left as it is. Factors above 1 sharpen.
    """
    height, width = x.shape[-2:]
    if height <= 2 or width <= 2:
        return x
    # The $3 \times 3$ sums as two sums of three shifted views (rows, then columns):
    # whole numbers, so exact in `float32`, and faster than a grouped convolution on CPU.
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    centre = x[..., 1:-1, 1:-1]
    # The kernel's centre weight is $5 = 1 + 4$
    blurred = ((box + 4.0 * centre) / 13.0).round()
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = blurred
    return _blend(x, degenerate, factor)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Posterize: keep the top `bits` bits of each 8-bit value (a per-image whole number)."""
    step = _per_image(torch.pow(2.0, 8.0 - bits.to(x.dtype)))
    return torch.floor(x / step) * step


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Solarize: invert the values at or above the threshold."""
    return torch.where(x >= _per_image(threshold), 255.0 - x, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """
    Autocontrast: stretch each channel of each image linearly so that its darkest
    value becomes 0 and its brightest 255. A flat channel stays as it is.
    """
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    flat = high == low
    # Values per level of output, computed in the same order as torchvision so that
    # the truncation to whole levels agrees with it bit for bit.
    step = (high - low) * (1.0 / 255.0)
    low = torch.where(flat, torch.zeros_like(low), low)
    step = torch.where(flat, torch.ones_like(step), step)
    return _to_levels((x - low) / step)


def equalize(x: torch.Tensor) -> torch.Tensor:
    r"""
    Equalize: remap each channel of each image through its cumulative histogram,
    so the values spread evenly over $[0, 255]$, following PIL's rule: with
    $n$ the number of pixels that are not at the channel's brightest value,
    $\text{step} = \lfloor n / 255 \rfloor$ and value $v$ maps to
    $\lfloor (\#\{\text{pixels} < v\} + \lfloor \text{step}/2 \rfloor) / \text{step} \rfloor$.
    Channels with $\text{step} = 0$ (nearly flat) stay as they are.

    The 256-bin histograms of all `batch_size × 3` channels are one `scatter_add_`.
    """
    batch_size, channels, height, width = x.shape
    # `[batch_size * 3, height * width]`, whole numbers used as histogram bins
    values = x.reshape(batch_size * channels, height * width).long()
    hist = torch.zeros(batch_size * channels, 256, dtype=x.dtype, device=x.device)
    hist.scatter_add_(1, values, torch.ones_like(values, dtype=x.dtype))
    # Pixels at the brightest value of each channel
    brightest = values.amax(dim=1, keepdim=True)
    n_not_brightest = height * width - hist.gather(1, brightest)
    step = torch.floor(n_not_brightest / 255.0)
    # Number of pixels below each value $v$: the cumulative histogram shifted by one.
    below = torch.cumsum(hist, dim=1) - hist
    lut = torch.floor((below + torch.floor(step / 2)) / step.clamp(min=1)).clamp(0, 255)
    out = lut.gather(1, values)
    out = torch.where(step > 0, out, values.to(x.dtype))
    return out.view(batch_size, channels, height, width)


# ## Geometric operations
#
# Pixel positions are measured from the image centre, $x$ to the right and $y$
# down, with pixel centres at half-integers. For each output pixel, a $2 \times 3$
# matrix $A$ gives where to read it from in the input,
# $(x_\text{in}, y_\text{in}) = A \, (x, y, 1)^\top$, the inverse of how the image
# content moves:
#
# * translate by $(t_x, t_y)$: read from $(x - t_x, y - t_y)$;
# * rotate counter-clockwise by $\theta$: read from
#   $(x \cos\theta - y \sin\theta,\; x \sin\theta + y \cos\theta)$;
# * shear along $x$ by $m$ about the top edge: read from
#   $(x + m (y + \frac{H}{2}), y)$, and along $y$ about the left edge:
#   $(x, y + m (x + \frac{W}{2}))$.

def warp(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    r"""
    Apply per-image affine maps `matrices` `[batch_size, 2, 3]` (in the pixel
    coordinates above) with nearest-neighbour sampling and black fill.

    `affine_grid` wants the matrix in coordinates where the image spans
    $[-1, 1]$, i.e. divided by $(\frac{W}{2}, \frac{H}{2})$: that is
    $D^{-1} A D$ with $D = \mathrm{diag}(\frac{W}{2}, \frac{H}{2}, 1)$.
    """
    height, width = x.shape[-2:]
    theta = matrices.clone()
    theta[:, 0, 1] *= height / width
    theta[:, 1, 0] *= width / height
    theta[:, 0, 2] *= 2.0 / width
    theta[:, 1, 2] *= 2.0 / height
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode='nearest', padding_mode='zeros', align_corners=False)


def geometric_matrices(op: torch.Tensor, value: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """
    The matrix $A$ `[batch_size, 2, 3]` of each image's operation `op` `[batch_size]`
    with its signed magnitude `value` `[batch_size]`; the identity for the
    colour operations.
    """
    def is_op(name):
        return op == OP_INDEX[name]

    zero, one = torch.zeros_like(value), torch.ones_like(value)
    angle = torch.where(is_op('Rotate'), value, zero) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    shear_x = torch.where(is_op('ShearX'), value, zero)
    shear_y = torch.where(is_op('ShearY'), value, zero)
    # RandAugment moves by whole pixels (towards zero, like `int()`).
    shift_x = torch.where(is_op('TranslateX'), value.trunc(), zero)
    shift_y = torch.where(is_op('TranslateY'), value.trunc(), zero)
    # At most one of rotation, shear and translation is non-zero for an image,
    # so their matrices can simply be written into one.
    row0 = torch.stack([cos, -sin + shear_x, shear_x * (height / 2) - shift_x], dim=1)
    row1 = torch.stack([sin + shear_y, cos * one, shear_y * (width / 2) - shift_y], dim=1)
    return torch.stack([row0, row1], dim=1)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    r"""
    ## Normalise

    `uint8` images `[batch_size, 3, height, width]` (or float images holding values
    in $[0, 255]$) to `float32` $\frac{x / 255 - \mu}{\sigma}$ per channel,
    what `ToTensor()` followed by `Normalize(mean, std)` gives; for evaluation.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.to(torch.float32) / 255.0 - mean_t) / std_t


class BatchAugment(nn.Module):
    """
    ## Augment a batch

    In training mode, `forward` takes a `uint8` batch `[batch_size, 3, height, width]`
    on any device and returns the augmented and normalised `float32` batch of the
    same shape; in evaluation mode (`.eval()`) it only normalises.

    The steps, in the order of the reference per-image pipeline:

    1. a random crop of the image padded with `crop_padding` black pixels on each
       side (off by default: the CIFAR-10 recipe's `RandomResizedCrop` with
       scale 1 is the identity);
    2. a horizontal flip with probability ½ (`flip`);
    3. `num_ops` RandAugment operations at bin `magnitude` of `num_bins`, each
       image drawing its own operations and signs;
    4. normalisation with the per-channel `mean` and `std` (of images in $[0, 1]$).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], *, flip: bool = True,
                 num_ops: int = 2, magnitude: int = 12, num_bins: int = 31, crop_padding: int = 0):
        super().__init__()
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (R, G, B), got {list(mean)} and {list(std)}")
        if num_ops < 0 or crop_padding < 0:
            raise ValueError(f"num_ops and crop_padding must be >= 0, got {num_ops} and {crop_padding}")
        # Checks the magnitude against the number of bins, with any image size.
        op_magnitudes(magnitude, num_bins, 1, 1)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.flip = flip
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.num_bins = num_bins
        self.crop_padding = crop_padding
        self._tables = {}

    def extra_repr(self) -> str:
        return (f"flip={self.flip}, num_ops={self.num_ops}, magnitude={self.magnitude}/{self.num_bins}, "
                f"crop_padding={self.crop_padding}")

    def random_crop(self, x: torch.Tensor) -> torch.Tensor:
        """
        A random crop of the image padded with $p$ black pixels is the image moved
        by a random whole number of pixels in $[-p, p]$ along each axis, with black
        filling in: one batched translation.
        """
        p = self.crop_padding
        shift = torch.randint(-p, p + 1, (x.shape[0], 2), device=x.device).to(x.dtype)
        matrices = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)
        matrices[:, 0, 0] = 1.0
        matrices[:, 1, 1] = 1.0
        matrices[:, :, 2] = -shift
        return warp(x, matrices)

    def random_flip(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror each image left to right with probability ½."""
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(_per_image(flip), x.flip(-1), x)

    def _op_table(self, device: torch.device, height: int, width: int):
        """
        The magnitude of each operation `[14]` and whether it is signed `[14]`, as
        tensors on the device, made once per device and image size: copying them to
        a GPU at every batch would be a small, needless host-to-device transfer.
        """
        key = (str(device), height, width)
        if key not in self._tables:
            table = op_magnitudes(self.magnitude, self.num_bins, height, width)
            self._tables[key] = (
                torch.tensor([table[name] for name in OP_NAMES], dtype=torch.float32, device=device),
                torch.tensor([name in SIGNED_OPS for name in OP_NAMES], device=device))
        return self._tables[key]

    def random_op(self, x: torch.Tensor) -> torch.Tensor:
        """
        One RandAugment step: each image draws an operation and a sign.
        """
        batch_size, _, height, width = x.shape
        device = x.device
        op = torch.randint(len(OP_NAMES), (batch_size,), device=device)
        negative = torch.randint(2, (batch_size,), device=device) == 1

        # The magnitude of each image's operation, with its sign
        magnitudes, signed = self._op_table(device, height, width)
        value = magnitudes[op]
        value = torch.where(signed[op] & negative, -value, value)

        # All geometric operations at once; the other images get the identity.
        x = warp(x, geometric_matrices(op, value, height, width))

        # The colour operations: computed for all, kept where drawn.
        colour_ops = {
            'Brightness': lambda: adjust_brightness(x, 1.0 + value),
            'Color': lambda: adjust_saturation(x, 1.0 + value),
            'Contrast': lambda: adjust_contrast(x, 1.0 + value),
            'Sharpness': lambda: adjust_sharpness(x, 1.0 + value),
            'Posterize': lambda: posterize(x, value),
            'Solarize': lambda: solarize(x, value),
            'AutoContrast': lambda: autocontrast(x),
            'Equalize': lambda: equalize(x),
        }
        out = x
        for name, apply in colour_ops.items():
            out = torch.where(_per_image(op == OP_INDEX[name]), apply(), out)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a uint8 batch of shape [batch_size, 3, height, width], "
                             f"got {images.dtype} of shape {tuple(images.shape)}")
        if not self.training:
            return normalize(images, self.mean, self.std)
        # Whole numbers in $[0, 255]$, as `float32`
        x = images.to(torch.float32)
        if self.crop_padding > 0:
            x = self.random_crop(x)
        if self.flip:
            x = self.random_flip(x)
        for _ in range(self.num_ops):
            x = self.random_op(x)
        return normalize(x, self.mean, self.std)
