r"""
---
title: CIFAR-10 data
nav_order: 1
summary: >
  Reading CIFAR-10's Python version from disk, checked by structure, and the two
  pipelines that turn it into augmented batches: per-image torchvision
  transforms in DataLoader workers, or whole batches augmented on the device.
---

# CIFAR-10 data

This page is the data half of the [CIFAR-10 experiment](../cifar10.html): it finds
CIFAR-10 on disk (downloading it when it is missing), reads it into memory and
hands batches to the training loop.

## The layout on disk

The Python version of CIFAR-10 unpacks from `cifar-10-python.tar.gz` into a
folder `cifar-10-batches-py/` of seven pickled dictionaries, written by
Python 2:

| file | what it holds |
|---|---|
| `data_batch_1` … `data_batch_5` | 10,000 training images each |
| `test_batch` | the 10,000 test images |
| `batches.meta` | `label_names`, the ten class names |

In a batch file, `data` is a `uint8` array of shape `[N, 3072]`: each row is
one image, its red plane, then its green, then its blue, each plane 32 rows of
32 pixels. `labels` is a list of $N$ class indices into `label_names`.
The planes already come channel-first, so a row becomes a `[3, 32, 32]` image
with a reshape and no copy of pixels between channels.

## Checked by structure, not by checksum

The downloaded archive is checked against its MD5 sum. A folder that is
already there is not: we check that every file has the keys, types, shapes and
label ranges of the layout above, and stop with one line that names the file
and the problem when it does not. So any data set written in this layout
works, a relabelled, cut-down or synthetic one included (the tests train on
such a synthetic set), with as many classes as `batches.meta` names, while a
truncated or mixed-up file still fails early with a clear message instead of a
shape error deep inside training.

## Two pipelines

The images stay in memory as `uint8` tensors (150 MB for all of CIFAR-10) and
reach the model in one of two ways:

* `torchvision`: a [`DataLoader`](#ImageDataset) whose worker processes flip and
  RandAugment each image on its own, as the paper's reference code does;
* `batched`: the whole data set sits on the device and
  [`DeviceBatches`](#DeviceBatches) cuts it into batches that are augmented
  all at once by [`BatchAugment`](gpu_augment.html) in the training process,
  between steps, so a fast GPU never waits for CPU workers and a CPU's cores
  are not shared with worker processes.

The experiment picks `batched` on CUDA and on a CPU (measured: see
[`default_settings`](../runner/speed.html#default_settings)), and `torchvision`
elsewhere; both normalise with the training set's per-channel mean and
standard deviation.
"""

import dataclasses
import math
import pickle
import socket
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from labml import lab, logger

from experiments.runner.errors import UserError
# The per-channel mean and standard deviation of CIFAR-10's training images,
# on the $[0, 1]$ scale, used to normalise every image. They belong to the
# model as much as to the data (a trained model expects its inputs normalised
# this way), so the package defines them.
from labml_convmixer.models import CIFAR10_MEAN, CIFAR10_STD


# The names torchvision and the data set's authors use.
ARCHIVE_NAME = 'cifar-10-python.tar.gz'
FOLDER_NAME = 'cifar-10-batches-py'
TRAIN_FILES = [f'data_batch_{i}' for i in range(1, 6)]
TEST_FILE = 'test_batch'
META_FILE = 'batches.meta'
IMAGE_SHAPE = (3, 32, 32)


# A data set that is missing, cannot be downloaded, or breaks the layout is an
# error the user can fix: one line, no traceback (see the
# [launcher](../runner/launch.html#launch)).

class DataError(UserError):
    """CIFAR-10 is missing, cannot be downloaded, or a file breaks the layout."""


# ## Reading CIFAR-10 from disk
#
# Each file of the [layout](#the-layout-on-disk) is a pickle. Unpickling can
# run arbitrary code, so we only let the pickle rebuild NumPy arrays: anything
# else stops with an error instead of executing.

_PICKLE_ALLOWED = {
    ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'), ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'), ('numpy._core.numeric', '_frombuffer'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 file never needs")


def _load_pickle(path: Path) -> Dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        with open(path, 'rb') as f:
            # The files were written by Python 2; `latin1` reads its byte strings
            # (and NumPy's array buffers) unchanged.
            obj = _ArraysOnlyUnpickler(f, encoding='latin1').load()
    except Exception as e:
        raise DataError(f"{path}: not a readable CIFAR-10 pickle ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a dictionary, found {type(obj).__name__}")
    # Keys may be `bytes` in files written with `encoding='bytes'`; compare as text.
    return {(k.decode('latin1') if isinstance(k, bytes) else k): v for k, v in obj.items()}


def read_class_names(path: Path) -> List[str]:
    """
    The class names from `batches.meta`: a non-empty list of distinct strings.
    """
    meta = _load_pickle(path)
    if 'label_names' not in meta:
        raise DataError(f"{path}: missing key 'label_names' (found {sorted(meta)})")
    names = [n.decode() if isinstance(n, bytes) else n for n in meta['label_names']]
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        raise DataError(f"{path}: 'label_names' must list at least two class names")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: 'label_names' has duplicate names")
    return names


def read_batch(path: Path, n_classes: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    One batch file, checked, as `uint8` images `[N, 3, 32, 32]` and `int64` labels `[N]`.
    """
    batch = _load_pickle(path)
    for key in ('data', 'labels'):
        if key not in batch:
            raise DataError(f"{path}: missing key '{key}' (found {sorted(batch)})")
    data = batch['data']
    if not isinstance(data, np.ndarray):
        raise DataError(f"{path}: 'data' must be a NumPy array, found {type(data).__name__}")
    if data.dtype != np.uint8:
        raise DataError(f"{path}: 'data' has dtype {data.dtype}, expected uint8")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' has shape {tuple(data.shape)}, "
                        f"expected (N, 3072): N images of 3 planes of 32x32 pixels")
    try:
        labels = np.asarray(batch['labels'])
    except Exception:
        raise DataError(f"{path}: 'labels' is not a list of integers") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: 'labels' must be a list of integers")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if len(bad):
        raise DataError(f"{path}: label {int(bad[0])} is out of range 0..{n_classes - 1} "
                        f"({n_classes} classes in {META_FILE})")
    # `[N, 3072]` → `[N, 3, 32, 32]`; the planes are already channel-first.
    images = torch.from_numpy(data.copy()).view(-1, *IMAGE_SHAPE)
    return images, torch.from_numpy(labels.astype(np.int64))


@dataclasses.dataclass
class CIFARData:
    """
    The whole data set in memory as `uint8` tensors: 150 MB for CIFAR-10.
    """
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: List[str]


def read_cifar_folder(root: Path) -> CIFARData:
    """
    Read and check `root/cifar-10-batches-py/`.
    """
    folder = root / FOLDER_NAME
    classes = read_class_names(folder / META_FILE)
    train = [read_batch(folder / name, len(classes)) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(folder / TEST_FILE, len(classes))
    return CIFARData(torch.cat([t[0] for t in train]), torch.cat([t[1] for t in train]),
                     test_images, test_labels, classes)


def download_cifar10(root: Path):
    """
    ### Download

    torchvision knows CIFAR-10's address and MD5 sums. The archive is only
    downloaded when it is not already in `root` with the right checksum, so a
    hand-copied `cifar-10-python.tar.gz` is simply unpacked. A short socket
    timeout makes a machine without network fail in seconds, not minutes.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive
    logger.log(f"CIFAR-10 is not in {root / FOLDER_NAME}: downloading it from {CIFAR10.url}")
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        download_and_extract_archive(CIFAR10.url, str(root), filename=ARCHIVE_NAME, md5=CIFAR10.tgz_md5)
    except Exception as e:
        reason = str(getattr(e, 'reason', None) or e).strip().splitlines()
        raise DataError(
            f"CIFAR-10 not found in {root / FOLDER_NAME} and the download failed "
            f"({reason[0] if reason else type(e).__name__}). Put {ARCHIVE_NAME} "
            f"(from https://www.cs.toronto.edu/~kriz/cifar-10.html) into {root}/, "
            f"or pass --data-dir DIR with the data in DIR/{FOLDER_NAME}/") from None
    finally:
        socket.setdefaulttimeout(previous_timeout)


def load_cifar10(data_dir: str) -> CIFARData:
    """
    ### Find the data

    `data_dir` is the folder that holds `cifar-10-batches-py/`; empty means the
    project's `data/` folder. When the folder is there we read it as it is;
    otherwise we download CIFAR-10 into it.
    """
    root = Path(data_dir).expanduser().resolve() if data_dir else lab.get_data_path()
    if not (root / FOLDER_NAME).is_dir():
        download_cifar10(root)
    return read_cifar_folder(root)


# ## Data pipelines
#
# The `torchvision` pipeline is a `Dataset` of the in-memory images with a
# per-image transform, loaded by a `DataLoader`; the `batched` one is
# `DeviceBatches`. Both take their order from a sampler, so a distributed run
# gives each process its own share in either.
#
# The reference also applies `RandomResizedCrop(32, scale=(1, 1), ratio=(1, 1))`,
# which at scale 1 keeps the whole image: it is the identity, and we leave it out.

class ImageDataset(Dataset):
    """
    Images `[N, 3, 32, 32]` and labels in memory, with a per-image transform.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


def torchvision_transform(flip: bool = False, num_ops: int = 0, magnitude: int = 12):
    """
    Per-image transforms on `uint8` tensors: optional horizontal flips and
    RandAugment with `num_ops` operations of strength `magnitude` (0 operations
    leaves it out), then scaling to $[0, 1]$ and normalisation. The defaults,
    no augmentation, are the test set's transform.
    """
    from torchvision import transforms
    steps = []
    if flip:
        steps.append(transforms.RandomHorizontalFlip())
    if num_ops > 0:
        steps.append(transforms.RandAugment(num_ops=num_ops, magnitude=magnitude))
    steps += [transforms.ConvertImageDtype(torch.float32),
              transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    return transforms.Compose(steps)


class DeviceBatches:
    """
    The `batched` pipeline: an iterable of batches, like a `DataLoader`.
    `images` is the whole `uint8` data set on the device; `sampler` gives the
    order (and this process's share); `transform` turns a `uint8` batch
    `[B, 3, 32, 32]` into the augmented, normalised `float32` batch.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sampler: Sampler,
                 batch_size: int, transform):
        self.images, self.labels = images, labels
        self.sampler, self.batch_size, self.transform = sampler, batch_size, transform

    def __len__(self):
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self):
        order = torch.tensor(list(iter(self.sampler)), dtype=torch.long, device=self.images.device)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.transform(self.images[idx]), self.labels[idx]

