r"""
---
title: ConvMixer on CIFAR-10
summary: >
  The recipe that trains ConvMixer-256/8 on CIFAR-10: the model, the one-cycle
  schedule, the augmentation and the numbers to expect.
nav_order: 1
---

# ConvMixer on CIFAR-10

From the root of a clone, install the project and what its experiments use first:
`python3 -m pip install -e ".[experiment]"`.

This is the recipe that trains the [ConvMixer](../labml_convmixer/model.html)
on CIFAR-10: 50,000 training and 10,000 test images of $32 \times 32$ pixels in
ten classes.

```
python experiments/cifar10.py
```

The defaults follow the paper's CIFAR-10 reference code (convmixer-cifar10):

| what | recipe |
|---|---|
| model | **ConvMixer-256/8**: $h = 256$, $d = 8$, kernel $k = 5$, patch $p = 2$, GELU |
| grid | the $32 \times 32$ image becomes $16 \times 16$ patch embeddings |
| batch | 512 images |
| optimizer | AdamW, weight decay $0.005$ |
| schedule | one cycle, peak learning rate $0.05$, changed every iteration, 25 epochs |
| augmentation | random horizontal flips, RandAugment with 2 operations of magnitude 12 |
| precision | mixed on a GPU; on a CPU fp32, or the [bf16 precision plan](runner/speed.html#apply_precision_plan) where it has bf16 units |

**What to expect.** The reference code reports **92.6 % test accuracy after
25 epochs**, about 43 s per epoch on an RTX 2080 Ti, so expect about 92.5 %
from a GPU run here. A CPU is much slower: on a 2-core x86 machine
ConvMixer-256/8 trains at about 40 images/s end to end, some 10 hours for
the 25 epochs with their tests, or at 113.6 images/s on a 2-core Xeon with
AMX bf16 units (see the Performance page). For a first look,
train a small model on part of the data:

```
python experiments/cifar10.py --epochs 2 --train-subset 2000 --d-model 64 --n-layers 4
```

When a run has finished, `python experiments/cifar10.py --evaluate RUN_UUID`
measures it on the test set and draws, in the run folder, the confusion
matrix and [`filters.png`](filters.html): the patch embedding's kernels and
the depth-wise kernels of three layers, what the network learned.

This page is the recipe only. What supports it has pages of its own:
[the data](datasets/cifar10_data.html) (reading CIFAR-10, the two augmentation
pipelines), [the trainer](runner/trainer.html) (the epoch loop, the optimizer),
[the meter](runner/metrics.html) (loss and accuracy),
[runs and checkpoints](runner/runs.html) (the run folder and an exact `--resume`),
[the command line](runner/cli.html) (`--help` lists every setting, with its
default), [distributed training](runner/distributed.html) (`torchrun`) and
[reports](runner/reports.html) (`summary.json`, `metrics.png`, `--evaluate`).
"""

import sys
from pathlib import Path

# Run as a script, Python puts `experiments/` on the path but not the project
# root; add it so that `labml_convmixer` and `experiments` import without an
# install.
if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from torch.utils.data import DataLoader

from labml.configs import option

from experiments import filters
from experiments.datasets.cifar10_data import CIFAR10_MEAN, CIFAR10_STD, IMAGE_SHAPE, CIFARData, \
    DeviceBatches, ImageDataset, load_cifar10, torchvision_transform
from experiments.runner import cli
from experiments.runner.launch import launch
from experiments.runner.trainer import CHECKS, RANDAUGMENT_CHECKS, TrainerConfigs
from labml_convmixer.factory import convmixer


class Configs(TrainerConfigs):
    """
    ## The recipe's settings

    Every value here can be changed from the command line, for example
    `--d-model 128` or `--set weight_decay=0.01`; the
    [trainer](runner/trainer.html#TrainerConfigs) declares the settings shared by all
    experiments (device, speed switches, data folder, workers).
    """
    # The model, ConvMixer-$h$/$d$: $h$ = `d_model`, $d$ = `n_layers`,
    # $k$ = `kernel_size`, $p$ = `patch_size`, and the activation $\sigma$
    d_model = 256
    n_layers = 8
    kernel_size = 5
    patch_size = 2
    activation = 'gelu'

    # The schedule: $T$ = `epochs` and $\eta_{max}$ = `lr`; `batch_size` is the
    # global batch, shared by the processes of a distributed run
    epochs = 25
    batch_size = 512
    lr = 0.05
    weight_decay = 0.005
    # AdamW's own $\epsilon$, and no gradient clipping
    adam_eps = 1e-8
    clip_grad = 0.0

    # Augmentation, only for training
    flip: bool = True  # random horizontal flips
    randaugment_ops: int = 2  # RandAugment's number of operations (0: no RandAugment)
    randaugment_magnitude: int = 12  # RandAugment's magnitude, 0..30

    data: CIFARData

    def learning_rate(self, t: float) -> float:
        # The [trainer](runner/trainer.html#train) asks at every batch
        return one_cycle_lr(t, self.epochs, self.lr)


# ## The learning rate schedule
#
# One cycle, piecewise linear in the fractional epoch $t$: up from 0 to
# $\eta_{max}$ over the first $2T/5$ epochs, down to $\eta_{max}/20$ at $4T/5$,
# and to 0 at the end, $T$. It is evaluated at every iteration, with
# $t = \text{epoch} + \frac{i + 1}{\text{batches per epoch}}$ after batch $i$,
# so the position in the schedule is just the epoch and batch counters: a
# resumed run needs nothing more to continue it.

def one_cycle_lr(t: float, epochs: int, lr_max: float) -> float:
    return float(np.interp(t, [0, epochs * 2 / 5, epochs * 4 / 5, epochs],
                           [0, lr_max, lr_max / 20, 0]))


# ## The data
#
# CIFAR-10 is read into memory as `uint8` tensors by
# [`load_cifar10`](datasets/cifar10_data.html#load_cifar10), which downloads it the
# first time. `--train-subset N` keeps the first $N$ training images.

@option(Configs.data)
def _data(c: Configs) -> CIFARData:
    data = load_cifar10(c.data_dir)
    if c.train_subset:
        data.train_images = data.train_images[:c.train_subset]
        data.train_labels = data.train_labels[:c.train_subset]
    return data


# Training batches are augmented: flips and RandAugment, per image in loader
# workers (`torchvision`), or a whole batch at a time on the device
# (`batched`, what a GPU needs to be fed fast enough). Both are described on
# the [data page](datasets/cifar10_data.html#data-pipelines).

@option(Configs.train_loader)
def _train_loader(c: Configs):
    data = c.data
    sampler = c.shuffled_sampler(len(data.train_labels))
    if c.augment == 'batched':
        from experiments.datasets.gpu_augment import BatchAugment
        augment = BatchAugment(CIFAR10_MEAN, CIFAR10_STD, flip=c.flip,
                               num_ops=c.randaugment_ops, magnitude=c.randaugment_magnitude)
        return DeviceBatches(data.train_images.to(c.device), data.train_labels.to(c.device),
                             sampler, c.per_process_batch(), augment)
    transform = torchvision_transform(flip=c.flip, num_ops=c.randaugment_ops,
                                      magnitude=c.randaugment_magnitude)
    return DataLoader(ImageDataset(data.train_images, data.train_labels, transform),
                      batch_size=c.per_process_batch(), sampler=sampler,
                      num_workers=c.num_workers, pin_memory=c.device.type == 'cuda')


# Test batches are only normalised.

@option(Configs.valid_loader)
def _valid_loader(c: Configs):
    data = c.data
    sampler = c.shard_sampler(len(data.test_labels))
    if c.augment == 'batched':
        from experiments.datasets.gpu_augment import normalize
        return DeviceBatches(data.test_images.to(c.device), data.test_labels.to(c.device),
                             sampler, c.per_process_batch(),
                             lambda x: normalize(x, CIFAR10_MEAN, CIFAR10_STD))
    return DataLoader(ImageDataset(data.test_images, data.test_labels, torchvision_transform()),
                      batch_size=c.per_process_batch(), sampler=sampler,
                      num_workers=c.num_workers, pin_memory=c.device.type == 'cuda')


# ## The model
#
# ConvMixer-$h$/$d$ with as many classes as the data set names. It is built
# right after seeding, so every process of a distributed run starts from the
# same weights; [`prepare`](runner/trainer.html#TrainerConfigs.prepare) puts it on the
# device with the speed settings.

@option(Configs.model)
def _model(c: Configs) -> torch.nn.Module:
    torch.manual_seed(c.seed)
    model = convmixer(c.d_model, c.n_layers, kernel_size=c.kernel_size,
                      patch_size=c.patch_size, n_classes=len(c.data.classes),
                      activation=c.activation)
    return c.prepare(model)


# The optimizer, AdamW, is the [trainer's](runner/trainer.html#_optimizer).
#
# ## Run it
#
# The checks of this recipe's own settings, on top of the shared ones, and the
# command line, which draws [`filters.png`](filters.html) for `--evaluate`. A
# patch larger than the image would leave no patch at all.

CIFAR10_CHECKS = {
    **CHECKS, **RANDAUGMENT_CHECKS,
    'patch_size': (cli.at_least(1), cli.at_most(IMAGE_SHAPE[-1], 'the image size')),
}


def main(argv=None):
    launch(Configs, name='cifar10', description='Train ConvMixer on CIFAR-10 with labml.',
           checks=CIFAR10_CHECKS, argv=argv, draw=filters.draw_filters)


if __name__ == '__main__':
    main()
