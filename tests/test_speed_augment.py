"""
Tests of the batched augmentation in `experiments/datasets/gpu_augment.py`: shapes, ranges,
per-sample randomness, determinism, and every operation against torchvision's
own kernels on `uint8` images. Run on CPU tensors; the code is the same on a GPU.
"""

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode, RandAugment

from experiments.datasets import gpu_augment as G

from labml_convmixer.models import CIFAR10_MEAN as MEAN, CIFAR10_STD as STD


def random_images(batch_size=16, height=32, width=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch_size, 3, height, width), dtype=torch.uint8, generator=g)


def smooth_images(batch_size=16, height=32, width=32, seed=0):
    # Images with structure (a low-resolution image scaled up) as well as noise, so
    # that histograms and contrast are not those of uniform noise.
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch_size, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(height, width), mode='bilinear', align_corners=False)
    x = x * torch.rand(batch_size, 1, 1, 1, generator=g) * 200 + torch.rand(batch_size, 3, height, width,
                                                                           generator=g) * 30
    return x.clamp(0, 255).to(torch.uint8)


def unnormalize(y):
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (y * std + mean) * 255.0


# Each operation as torchvision's RandAugment applies it to one uint8 image,
# given the signed magnitude.
def torchvision_op(name, image, value):
    nearest = InterpolationMode.NEAREST
    if name == 'Identity':
        return image
    if name == 'ShearX':
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[math.degrees(math.atan(value)), 0.0], interpolation=nearest, center=[0, 0])
    if name == 'ShearY':
        return TF.affine(image, angle=0.0, translate=[0, 0], scale=1.0,
                         shear=[0.0, math.degrees(math.atan(value))], interpolation=nearest, center=[0, 0])
    if name == 'TranslateX':
        return TF.affine(image, angle=0.0, translate=[int(value), 0], scale=1.0, shear=[0.0, 0.0],
                         interpolation=nearest)
    if name == 'TranslateY':
        return TF.affine(image, angle=0.0, translate=[0, int(value)], scale=1.0, shear=[0.0, 0.0],
                         interpolation=nearest)
    if name == 'Rotate':
        return TF.rotate(image, value, interpolation=nearest)
    if name == 'Brightness':
        return TF.adjust_brightness(image, 1.0 + value)
    if name == 'Color':
        return TF.adjust_saturation(image, 1.0 + value)
    if name == 'Contrast':
        return TF.adjust_contrast(image, 1.0 + value)
    if name == 'Sharpness':
        return TF.adjust_sharpness(image, 1.0 + value)
    if name == 'Posterize':
        return TF.posterize(image, int(value))
    if name == 'Solarize':
        return TF.solarize(image, value)
    if name == 'AutoContrast':
        return TF.autocontrast(image)
    if name == 'Equalize':
        return TF.equalize(image)
    raise KeyError(name)


def ours_op(name, x, value):
    """Our batched operation `name` on float images `x` with per-image values."""
    batch_size, _, height, width = x.shape
    if name in ('Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate'):
        op = torch.full((batch_size,), G.OP_INDEX[name])
        return G.warp(x, G.geometric_matrices(op, value, height, width))
    return {
        'Brightness': lambda: G.adjust_brightness(x, 1.0 + value),
        'Color': lambda: G.adjust_saturation(x, 1.0 + value),
        'Contrast': lambda: G.adjust_contrast(x, 1.0 + value),
        'Sharpness': lambda: G.adjust_sharpness(x, 1.0 + value),
        'Posterize': lambda: G.posterize(x, value),
        'Solarize': lambda: G.solarize(x, value),
        'AutoContrast': lambda: G.autocontrast(x),
        'Equalize': lambda: G.equalize(x),
    }[name]()


# Largest share of pixels allowed to differ from torchvision, and by how many levels.
# Blends may differ by one level where float rounding lands on the other side of a
# whole number; nearest-neighbour shears have sample points exactly half-way between
# pixels, where float rounding decides which neighbour wins.
TOLERANCE = {'ShearX': (0.005, 255), 'ShearY': (0.005, 255), 'Rotate': (0.002, 255)}
DEFAULT_TOLERANCE = (0.02, 1)


def test_magnitudes_match_torchvision():
    # The magnitude of every operation at bin 12 of 31 on 32x32 images, against
    # torchvision's own table.
    ours = G.op_magnitudes(12, 31, 32, 32)
    space = RandAugment()._augmentation_space(31, (32, 32))
    assert set(space) - {'Identity'} <= set(ours)
    for name, (magnitudes, signed) in space.items():
        if magnitudes.ndim == 0:  # Identity, AutoContrast, Equalize have no magnitude
            continue
        assert ours[name] == pytest.approx(float(magnitudes[12]), abs=1e-4), name
        assert (name in G.SIGNED_OPS) == signed, name
    assert ours['Posterize'] == 6 and ours['Solarize'] == pytest.approx(153.0)
    assert ours['TranslateX'] == pytest.approx(150 / 331 * 32 * 12 / 30)


# Every operation, and the signed ones with both signs
OP_CASES = [(name, 1.0) for name in G.OP_NAMES] + [(name, -1.0) for name in G.SIGNED_OPS]


@pytest.mark.parametrize('name,sign', OP_CASES)
def test_each_op_matches_torchvision(name, sign):
    table = G.op_magnitudes(12, 31, 32, 32)
    value = table[name] * sign
    for images in (random_images(), smooth_images()):
        expected = torch.stack([torchvision_op(name, im, value) for im in images]).float()
        got = ours_op(name, images.float(), torch.full((images.shape[0],), value))
        assert got.shape == expected.shape
        diff = (got - expected).abs()
        share, levels = TOLERANCE.get(name, DEFAULT_TOLERANCE)
        assert (diff > 0).float().mean().item() <= share, name
        assert diff.max().item() <= levels, name


def test_ops_change_the_images():
    # The comparison above would pass for an operation that does nothing if
    # torchvision's did nothing too; check that each non-identity operation at
    # magnitude 12 actually changes the smooth test images.
    images = smooth_images().float()
    table = G.op_magnitudes(12, 31, 32, 32)
    for name in G.OP_NAMES[1:]:
        got = ours_op(name, images, torch.full((images.shape[0],), table[name]))
        assert (got != images).float().mean() > 0.01, name


def test_per_sample_ops_match_torchvision_per_image():
    # One RandAugment step on a batch: each image, with the operation and sign it
    # drew, must equal torchvision applying that operation to that image alone.
    # The draws are repeated from the same seed (first the operations, then the signs).
    images = smooth_images(batch_size=64, seed=3)
    augment = G.BatchAugment(MEAN, STD, flip=False, num_ops=1, magnitude=12)
    torch.manual_seed(123)
    out = unnormalize(augment(images)).round()
    torch.manual_seed(123)
    op = torch.randint(len(G.OP_NAMES), (64,))
    negative = torch.randint(2, (64,)) == 1
    table = G.op_magnitudes(12, 31, 32, 32)
    # Several different operations were drawn in this batch
    assert len(set(op.tolist())) >= 8
    for i in range(64):
        name = G.OP_NAMES[op[i]]
        value = table[name] * (-1.0 if name in G.SIGNED_OPS and negative[i] else 1.0)
        expected = torchvision_op(name, images[i], value).float()
        diff = (out[i] - expected).abs()
        share, levels = TOLERANCE.get(name, DEFAULT_TOLERANCE)
        assert (diff > 0).float().mean().item() <= share, (i, name)
        assert diff.max().item() <= levels, (i, name)


def test_output_shape_dtype_and_range():
    images = random_images(batch_size=32)
    augment = G.BatchAugment(MEAN, STD)
    torch.manual_seed(0)
    y = augment(images)
    assert y.shape == images.shape and y.dtype == torch.float32
    levels = unnormalize(y)
    # Still on the uint8 grid: whole numbers in [0, 255]
    assert levels.min() > -1e-3 and levels.max() < 255 + 1e-3
    assert (levels - levels.round()).abs().max() < 1e-3


def test_different_samples_get_different_augmentations():
    # The same image 64 times: per-sample draws give many different results.
    images = random_images(batch_size=1).expand(64, -1, -1, -1).contiguous()
    augment = G.BatchAugment(MEAN, STD, flip=False, num_ops=1)
    torch.manual_seed(0)
    y = augment(images)
    distinct = {tuple(row.tolist()) for row in y.flatten(1)[:, ::37]}
    assert len(distinct) >= 10


def test_deterministic_under_a_seed():
    images = random_images(batch_size=32)
    augment = G.BatchAugment(MEAN, STD, crop_padding=4)
    torch.manual_seed(42)
    a = augment(images)
    torch.manual_seed(42)
    b = augment(images)
    torch.manual_seed(43)
    c = augment(images)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_uses_the_global_rng_state():
    # Restoring the global generator's state (as a checkpoint does) replays the draws.
    images = random_images(batch_size=8)
    augment = G.BatchAugment(MEAN, STD)
    state = torch.get_rng_state()
    a = augment(images)
    torch.set_rng_state(state)
    assert torch.equal(augment(images), a)


def test_flip():
    images = random_images(batch_size=64)
    augment = G.BatchAugment(MEAN, STD, flip=True, num_ops=0)
    torch.manual_seed(0)
    y = unnormalize(augment(images)).round()
    same = (y == images.float()).flatten(1).all(1)
    mirrored = (y == images.flip(-1).float()).flatten(1).all(1)
    # Each image is either unchanged or exactly mirrored, and both happen.
    assert (same | mirrored).all()
    assert 10 <= mirrored.sum() <= 54


def test_random_crop_is_a_shift_with_black_fill():
    images = random_images(batch_size=32).clamp(min=1)  # no black pixels of their own
    augment = G.BatchAugment(MEAN, STD, flip=False, num_ops=0, crop_padding=4)
    torch.manual_seed(0)
    y = unnormalize(augment(images)).round()
    shifted = 0
    for i in range(32):
        black = (y[i] == 0).all(0)
        # The non-black part is a translated window of the original
        rows = (~black).any(1).nonzero().flatten()
        cols = (~black).any(0).nonzero().flatten()
        h, w = len(rows), len(cols)
        assert h >= 32 - 4 and w >= 32 - 4
        window = y[i][:, rows[0]:rows[0] + h, cols[0]:cols[0] + w]
        src_r = 0 if rows[0] > 0 else 32 - h
        src_c = 0 if cols[0] > 0 else 32 - w
        assert torch.equal(window, images[i, :, src_r:src_r + h, src_c:src_c + w].float())
        shifted += (h, w) != (32, 32)
    assert shifted > 16


def test_normalize_matches_torchvision():
    images = random_images(batch_size=4)
    expected = TF.normalize(images.float() / 255.0, list(MEAN), list(STD))
    assert torch.allclose(G.normalize(images, MEAN, STD), expected, atol=1e-6)
    # In evaluation mode the module only normalises.
    augment = G.BatchAugment(MEAN, STD).eval()
    assert torch.allclose(augment(images), expected, atol=1e-6)


@pytest.mark.parametrize('shape', [(1, 3, 32, 32), (3, 3, 7, 5), (5, 3, 31, 17), (2, 3, 2, 2), (1, 3, 1, 1)])
def test_batch_size_one_and_odd_shapes(shape):
    images = torch.randint(0, 256, shape, dtype=torch.uint8)
    augment = G.BatchAugment(MEAN, STD, crop_padding=2)
    torch.manual_seed(0)
    y = augment(images)
    assert y.shape == shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_rejects_wrong_input():
    augment = G.BatchAugment(MEAN, STD)
    with pytest.raises(ValueError, match='uint8'):
        augment(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match='shape'):
        augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match='magnitude'):
        G.BatchAugment(MEAN, STD, magnitude=31)
