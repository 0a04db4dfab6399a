r"""
---
title: Image folders
nav_order: 3
summary: >
  Reading a folder of images with one sub-folder per class, checked before
  anything is trained; the evaluation transform of the published ImageNet
  numbers and a timm-like training transform; workers that decode and crop,
  and optionally a device that augments whole batches.
---

# Image folders

This is the data half of the [ImageNet experiment](../imagenet.html). It reads
any data set laid out as torchvision's `ImageFolder` expects:

```
DIR/train/<class>/<image>.jpg
DIR/val/<class>/<image>.jpg
```

The classes are the sub-folders of `val/`, sorted by name, and a class's index
is its place in that order. For ImageNet-1k the sub-folders are the 1,000
synset ids (`n01440764`, ...), and sorted they are in the order of the
published weights' 1,000 outputs. ImageNet's validation images come as one
flat folder with a separate list of labels; sort them into synset folders
first (the usual `valprep.sh` script does this).

## Checked before anything runs

Each problem below stops the experiment with one line that names the folder,
before a model is built: the folder or its `val/` (or, for training, its
`train/`) is missing; `train/` and `val/` have different class folders (the
message lists the classes that are only in one of them); there are fewer than
two classes; a class folder holds no image files. Images are files with the
extensions torchvision accepts ([`IMAGE_EXTENSIONS`](#IMAGE_EXTENSIONS)), found
in the class folder and any folder below it.

**Links.** A class folder may itself be a symbolic link, and so may an image
file, wherever it leads: a subset of a data set is often made of links. A
link to a folder *inside* a class folder is followed only when it leads to a
folder within that class folder and not back up the tree; otherwise the run
stops with one line naming the link ([`_check_folder_link`](#_check_folder_link)).
A link such as `ln -s .. up` would otherwise make the walk go round, reading
the same images again and again under one class.

**A file that cannot be decoded stops the run, naming the file.** We do not
skip it. A skipped test image silently changes the number that is compared
with a published accuracy (which counts all 50,000 ImageNet validation
images), and a skipped training image makes a resumed run differ from one
that never stopped. Opening every file up front would find them early, but
takes minutes on ImageNet's 1.3 million files; so a broken file is found when
it is first read. Delete or replace it, then continue the run with
`--resume RUN_UUID`.

## Transforms

**Evaluation** is the transform the published numbers were measured with,
taken from the models' pretrained configuration (timm's, and the official
README's `validate.py`): resize the shorter side to
$\lfloor s / \text{crop\_pct} \rfloor$ with bicubic interpolation, crop the
centre $s \times s$, scale to $[0, 1]$ and normalise with the ImageNet mean and
standard deviation. For $s = 224$ and $\text{crop\_pct} = 0.96$ the shorter
side becomes 233. A test compares it with timm's own transform for each named
model on generated images: the tensors are equal, not merely close, because
both resize with the same PIL kernel.

**Training** follows timm's ImageNet transform: a random crop of between
`scale` and all of the image's area, with an aspect ratio between $3/4$ and
$4/3$, resized to $s \times s$; a horizontal flip with probability ½;
RandAugment; normalisation. timm adds mixup, cutmix and random erasing for
training from scratch; they are left out here (see the
[experiment](../imagenet.html#the-recipe)).

## Two pipelines

With `--augment torchvision` the loader's worker processes do everything,
image by image. With `--augment batched` (the default on a GPU and a CPU) the workers
only decode and crop, handing over `uint8` images, and the device flips,
RandAugments and normalises whole batches with
[`BatchAugment`](gpu_augment.html): decoding a JPEG is work only a CPU does,
but RandAugment on a $224 \times 224$ image costs a few milliseconds of CPU
time that a GPU spends in microseconds.
"""

import dataclasses
import os
from pathlib import Path
from typing import List, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from experiments.runner.errors import UserError

# What torchvision's `ImageFolder` takes for an image file
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff',
                    '.webp')
# A file and its class index
Sample = Tuple[str, int]


class DataError(UserError):
    """A folder that is missing or does not have the layout above."""


# ## Reading the folders

@dataclasses.dataclass
class FolderData:
    root: Path
    classes: List[str]
    train: List[Sample]
    valid: List[Sample]


def _names(names: Sequence[str], limit: int = 5) -> str:
    shown = ', '.join(names[:limit])
    return shown + (f' and {len(names) - limit} more' if len(names) > limit else '')


def class_folders(split: Path) -> List[str]:
    """The class folders of `split`, sorted; hidden folders are not classes."""
    return sorted(entry.name for entry in os.scandir(split)
                  if entry.is_dir() and not entry.name.startswith('.'))


def _check_folder_link(link: Path, class_folder: Path):
    """
    A link to a folder, inside a class folder, is followed only when it leads
    to a folder within the class folder and not to one above the link: a link
    back up (`ln -s .. up`) would make the walk go round for ever, and one
    leading out would put another folder's images under this class.
    """
    top, target = class_folder.resolve(), link.resolve()
    if not target.is_relative_to(top):
        problem = f"leads outside its class folder {class_folder}"
    elif link.parent.resolve().is_relative_to(target):
        problem = "leads back up the folder tree, a loop"
    else:
        return
    raise DataError(f"{link} is a link to {target}, which {problem}: links to folders "
                    f"are followed only within the class folder; remove the link or put "
                    f"the images themselves there")


def image_files(split: Path, classes: List[str]) -> List[Sample]:
    """Every image of every class folder (and folders below it), in a fixed order."""
    samples = []
    for label, name in enumerate(classes):
        files = []
        for folder, folders, names in os.walk(split / name, followlinks=True):
            for sub in folders:
                if os.path.islink(os.path.join(folder, sub)):
                    _check_folder_link(Path(folder, sub), split / name)
            files += [os.path.join(folder, file) for file in names
                      if file.lower().endswith(IMAGE_EXTENSIONS)]
        files.sort()
        if not files:
            raise DataError(f"{split / name} has no image files "
                            f"({', '.join(IMAGE_EXTENSIONS)})")
        samples += [(file, label) for file in files]
    return samples


def read_image_folder(root: Path, need_train: bool = True) -> FolderData:
    """
    ### Read and check `root`

    `need_train=False` is for evaluating: only `val/` is read then.
    """
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: --data-dir should name a folder "
                        f"with train/ and val/, each with one sub-folder of images per "
                        f"class")
    for split in ('train', 'val') if need_train else ('val',):
        if not (root / split).is_dir():
            hint = ' (--eval-only evaluates without one)' if split == 'train' else ''
            raise DataError(f"{root} has no {split}/ folder: put the images in "
                            f"{root / split}/<class>/{hint}")
    classes = class_folders(root / 'val')
    if need_train:
        train_classes = class_folders(root / 'train')
        only_train = sorted(set(train_classes) - set(classes))
        only_val = sorted(set(classes) - set(train_classes))
        if only_train or only_val:
            raise DataError(f"the class folders of {root}/train and {root}/val differ: "
                            f"only in train/: {_names(only_train) or 'none'}; "
                            f"only in val/: {_names(only_val) or 'none'}")
    if len(classes) < 2:
        found = f" ({_names(classes)})" if classes else ''
        plural = '' if len(classes) == 1 else 's'
        raise DataError(f"{root / 'val'} has {len(classes)} class folder{plural}"
                        f"{found}: a classifier needs at least 2")
    train = image_files(root / 'train', classes) if need_train else []
    return FolderData(root, classes, train, image_files(root / 'val', classes))


def random_subset(samples: List[Sample], n: int, seed: int) -> List[Sample]:
    """
    `n` samples drawn with `seed`, kept in folder order. The folders list the
    images class by class, so the first $n$ would mostly be one class.
    """
    if not n or n >= len(samples):
        return samples
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(samples), generator=generator)[:n].sort().values
    return [samples[i] for i in chosen.tolist()]


# ## Reading an image

class UnreadableImage(DataError):
    """
    An image file that cannot be decoded. Raised in a loader worker, it
    reaches the main process as `UnreadableImage(text)`, where `text` is the
    worker's whole traceback; we keep our own last line of it, so the user
    still sees one line.
    """

    def __init__(self, message: str):
        marker = f'{type(self).__name__}: '
        if 'Traceback' in message and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


def load_rgb(path: str):
    """The image as a PIL RGB image (grey, palette and CMYK images converted)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            return image.convert('RGB')
    except Exception as e:  # PIL raises many kinds for a broken file
        unknown = isinstance(e, UnidentifiedImageError)
        reason = ('not in an image format PIL knows' if unknown
                  else f'{type(e).__name__}: {e}')
        raise UnreadableImage(f"{path}: cannot read this image ({reason}); delete or "
                              f"replace the file, then start again or --resume "
                              f"RUN_UUID") from None


class ImageFiles(Dataset):
    """Image files and their labels, with a per-image transform."""

    def __init__(self, samples: List[Sample], transform):
        self.samples, self.transform = samples, transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        return self.transform(load_rgb(path)), label


def image_loader(samples: List[Sample], transform, sampler: Sampler, batch_size: int,
                 num_workers: int, pin_memory: bool) -> DataLoader:
    """
    Batches decoded by `num_workers` processes; each keeps `prefetch_factor`
    batches ready, so the model does not wait while the next ones decode.
    """
    extra = {'prefetch_factor': 4} if num_workers > 0 else {}
    return DataLoader(ImageFiles(samples, transform), batch_size=batch_size,
                      sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                      **extra)


# ## Transforms

def _interpolation(name: str):
    from torchvision.transforms import InterpolationMode
    return InterpolationMode(name)


def eval_transform(image_size: int, crop_pct: float, interpolation: str,
                   mean: Sequence[float], std: Sequence[float]):
    r"""
    Resize the shorter side to $\lfloor s / \text{crop\_pct} \rfloor$, crop the
    centre $s \times s$, normalise.
    """
    from torchvision import transforms
    return transforms.Compose([
        transforms.Resize(int(image_size / crop_pct),
                          interpolation=_interpolation(interpolation)),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std)])


def train_transform(image_size: int, scale: float, interpolation: str, *, flip: bool,
                    num_ops: int, magnitude: int, mean: Sequence[float],
                    std: Sequence[float], on_device: bool = False,
                    scale_max: float = 1.0):
    r"""
    A random crop resized to $s \times s$, then flips, RandAugment and
    normalisation; with `on_device` the crop only, as a `uint8` tensor, and
    the rest is the device's ([`BatchAugment`](gpu_augment.html)).
    """
    from torchvision import transforms
    steps = [transforms.RandomResizedCrop(image_size, scale=(scale, scale_max),
                                          interpolation=_interpolation(interpolation))]
    if on_device:
        return transforms.Compose(steps + [transforms.PILToTensor()])
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    if num_ops > 0:
        steps.append(transforms.RandAugment(num_ops=num_ops, magnitude=magnitude))
    return transforms.Compose(steps + [transforms.ToTensor(),
                                       transforms.Normalize(mean, std)])


def describe(transform) -> List[str]:
    """A transform as the list of its steps, for `summary.json`."""
    return [repr(step) for step in transform.transforms]


class DeviceAugment:
    """
    The `batched` pipeline: batches of `uint8` crops from `loader`, moved to
    `device` and augmented there by `augment`. Like a `DataLoader`, it has a
    length and a sampler (whose epoch the trainer sets).
    """

    def __init__(self, loader: DataLoader, device: torch.device, augment):
        self.loader, self.device, self.augment = loader, device, augment

    @property
    def sampler(self):
        return self.loader.sampler

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for images, labels in self.loader:
            yield self.augment(images.to(self.device, non_blocking=True)), labels
