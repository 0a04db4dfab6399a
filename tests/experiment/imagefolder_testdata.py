"""
Helpers for the ImageNet experiment's tests: small image folders in
torchvision's `ImageFolder` layout that a tiny ConvMixer can learn, written
as JPEG and PNG files of different sizes, and a way to run the experiment.
"""

import functools
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
from PIL import Image

from cifar10_testdata import ROOT, run_script

IMAGENET = ROOT / 'experiments' / 'imagenet.py'
run_imagenet = functools.partial(run_script, script=IMAGENET)
CLASSES = ['blue', 'green', 'red', 'stripes']

# A tiny model and small images: a few seconds an epoch on a CPU
TINY = ['--d-model', '16', '--n-layers', '2', '--kernel-size', '3', '--patch-size', '4',
        '--image-size', '32', '--batch-size', '32', '--num-workers', '0',
        '--no-compile', '--lr', '0.005', '--warmup-epochs', '0.2',
        '--precision', 'fp32']


def class_image(name: str, rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    """An RGB `uint8` image: one colour plane brightened, or horizontal stripes."""
    image = rng.normal(110, 30, size=(height, width, 3))
    if name == 'stripes':
        image[::4] += 100
        image[1::4] += 100
    else:
        colours = ('red', 'green', 'blue')
        plane = colours.index(name) if name in colours else sum(map(ord, name)) % 3
        image[..., plane] += 90
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(folder: Path, images: Sequence[np.ndarray], first: int = 0):
    """Alternately JPEG and PNG files, named by number."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images, start=first):
        suffix = '.png' if i % 2 else '.jpg'
        Image.fromarray(image).save(folder / f'img_{i:04d}{suffix}')


def write_folder(root: Path, n_train: int = 24, n_val: int = 8, seed: int = 0,
                 classes: Sequence[str] = CLASSES) -> Path:
    """`root/{train,val}/<class>/` with images of 36 to 64 pixels a side."""
    rng = np.random.default_rng(seed)
    for split, n in (('train', n_train), ('val', n_val)):
        for name in classes:
            sizes = rng.integers(36, 65, size=(n, 2))
            write_images(root / split / name,
                         [class_image(name, rng, int(h), int(w)) for h, w in sizes])
    return root


def write_colour_folder(root: Path, counts: Dict[str, int], misfiled: int) -> Path:
    """
    `val/{blue,green,red}/`: `counts[name]` plain images of that colour (PNG,
    so the colours survive exactly), and `misfiled` green images in `red/`.
    """
    colours = {'red': (230, 20, 20), 'green': (20, 230, 20), 'blue': (20, 20, 230)}
    rng = np.random.default_rng(1)
    for name, n in counts.items():
        folder = root / 'val' / name
        folder.mkdir(parents=True)
        images = [(name, colours[name])] * n + [('green', colours['green'])] * (
            misfiled if name == 'red' else 0)
        for i, (_, colour) in enumerate(images):
            h, w = rng.integers(40, 90, size=2)
            Image.new('RGB', (int(w), int(h)), colour).save(folder / f'{i:03d}.png')
    return root
