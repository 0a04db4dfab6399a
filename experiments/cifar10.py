r"""
---
title: ConvMixer on CIFAR-10
summary: >
  Train ConvMixer-256/8 on CIFAR-10 with labml: the reference recipe, a command
  line, checkpoints that survive a crash, exact resume, evaluation with a
  confusion matrix, and multi-GPU training with torchrun.
---

# ConvMixer on CIFAR-10

This is the experiment that trains the [ConvMixer](../labml_convmixer/model.html)
on CIFAR-10, 50,000 training and 10,000 test images of $32 \times 32$ pixels in
ten classes. Run it with

```
python experiments/cifar10.py
```

The defaults follow the recipe of the paper's CIFAR-10 reference code
(convmixer-cifar10): **ConvMixer-256/8** ($h = 256$, $d = 8$) with kernel size
$k = 5$ and patch size $p = 2$, so the $32 \times 32$ image becomes a
$16 \times 16$ grid of patch embeddings; batches of 512; AdamW with a peak
learning rate of $0.05$ and weight decay $0.005$; a one-cycle learning rate that
changes every iteration; random horizontal flips and RandAugment with 2
operations of magnitude 12; 25 epochs; mixed precision on a GPU. With this
recipe the reference code reports **92.6 % test accuracy after 25 epochs**
(about 43 s per epoch on an RTX 2080 Ti), so expect about 92.5 % from a
GPU run here. A CPU is much slower: on a 2-core x86 machine we measured
ConvMixer-256/8 training at 25 to 35 images/s end to end (compiled,
channels-last, batch 128), that is 25 to 35 minutes an epoch and 11 to 15
hours for the 25 epochs. For a first look use `--train-subset`, a smaller
model or a GPU.

## Command line

`python experiments/cifar10.py --help` lists every option. The common ones:

| flag | what |
|---|---|
| `--data-dir DIR` | where CIFAR-10 is, as `DIR/cifar-10-batches-py/`; default `data/` of the project |
| `--epochs`, `--batch-size`, `--lr` | the schedule's length, the (global) batch size and the peak learning rate |
| `--d-model`, `--n-layers`, `--kernel-size`, `--patch-size`, `--activation` | the model: $h$, $d$, $k$, $p$ and $\sigma$ |
| `--train-subset N` | train on the first `N` training images only, for quick runs |
| `--seed`, `--device`, `--name` | random seed, `cpu` / `cuda` / `cuda:1`, and the experiment name |
| `--set KEY=VALUE` | any other setting of [`Configs`](#Configs), e.g. `--set weight_decay=0.01` |
| `--resume RUN_UUID` | continue a run that stopped, from its last checkpoint |
| `--evaluate RUN_UUID` | test accuracy, a per-class table and a confusion matrix of a run |

and the speed switches `--compile/--no-compile`, `--channels-last/--no-channels-last`,
`--fused-optimizer/--no-fused-optimizer`, `--precision {fp32,bf16,fp16}` and
`--augment {torchvision,batched}`, whose defaults depend on the device (see
[Training fast](speed.html)).

## Data

Without CIFAR-10 on disk the script downloads `cifar-10-python.tar.gz` with
torchvision into the data folder and checks its MD5 sum. On a machine without
network access, download the archive yourself
(from <https://www.cs.toronto.edu/~kriz/cifar-10.html>) and put it into
`data/`: it is checked and unpacked on the next run. Any data set stored in
CIFAR-10's layout works with `--data-dir`, a relabelled or synthetic one
included: its files are checked by structure, not by checksum. Reading,
checking and batching the data is on its own page,
[CIFAR-10 data](cifar10_data.html): the layout on disk,
[`load_cifar10`](cifar10_data.html#load_cifar10) and the two pipelines that
`--augment` chooses between.

## Runs

Each run gets a folder `logs/<name>/<run uuid>/` (`--logs-dir` moves `logs/`)
with labml's `configs.yaml`,
`run.yaml` and `log.jsonl`, plus

* `checkpoint.pt`, rewritten after every epoch: model, optimizer, position in
  the schedule and the state of every random number generator;
* `summary.json` and `metrics.png` (loss and accuracy per epoch) at the end.

A run that was stopped, even with `kill -9` in the middle of an epoch, goes on
with `--resume RUN_UUID` from its last complete epoch; on a CPU with a fixed
seed it then gives exactly the numbers of a run that was never interrupted.

## Several GPUs

```
torchrun --nproc_per_node=4 experiments/cifar10.py
```

trains with `DistributedDataParallel`, one process per GPU (NCCL; on CPUs the
gloo backend). `--batch-size` stays the *global* batch, split evenly among the
processes, so the recipe's learning rate still fits. `--sync-bn` makes batch
normalization use the statistics of the whole global batch (CUDA only). Only
the first process writes logs and checkpoints, and `--resume` works the same
way. On a machine without GPUs the same command runs several CPU processes,
which is how the tests check it:

```
torchrun --nproc_per_node=2 experiments/cifar10.py --device cpu --no-compile \
    --weights-digest /tmp/digests
```

`--weights-digest DIR` makes each process write a SHA-256 of its final weights
to `DIR/rank<N>.sha256`; they must all be equal.
"""

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

# Run as a script, Python puts `experiments/` on the path but not the project
# root; add it so that `labml_convmixer` and `experiments.*` import without an
# install.
if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from labml import experiment, lab, logger, monit, tracker
from labml.configs import option
from labml_helpers.train_valid import BatchIndex, TrainValidConfigs

from experiments import speed
from experiments.cifar10_data import CIFAR10_MEAN, CIFAR10_STD, FOLDER_NAME, CIFARData, DeviceBatches, \
    ImageDataset, ShardSampler, UserError, load_cifar10, torchvision_transform
from labml_convmixer.model import ACTIVATIONS, convmixer

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


# ## Distributed training
#
# `torchrun` starts one process per device and tells each its place through
# environment variables. A plain `python experiments/cifar10.py` is a world of
# one process.

@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0')), world_size)
    # NCCL moves the gradients between GPUs; gloo is the backend for CPUs.
    if device.type == 'cuda':
        # Each process owns one GPU; collectives use the current device
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return info


def broadcast_buffers(model: nn.Module):
    """
    `DistributedDataParallel` averages gradients, so the parameters stay the
    same on every process, but each process updates batch normalization's
    running statistics from its own part of the batch. Copying the first
    process's buffers to the others after each epoch makes every process
    evaluate, and end with, the same model.
    """
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


class EpochMeter:
    """
    ### Loss and accuracy of an epoch

    Sums stay on the device as tensors. Reading a value from a GPU waits for all
    queued work, so doing it every batch would stall the pipeline; we read
    once per epoch (and add up the processes' sums there).
    """

    def __init__(self):
        self.loss_sum = self.correct = None
        self.count = 0

    def reset(self):
        self.loss_sum = self.correct = None
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
        n = labels.shape[0]
        loss_sum = loss.detach().double() * n
        correct = (logits.detach().argmax(dim=-1) == labels).sum()
        self.loss_sum = loss_sum if self.loss_sum is None else self.loss_sum + loss_sum
        self.correct = correct if self.correct is None else self.correct + correct
        self.count += n

    def result(self, device: torch.device, distributed: bool) -> Tuple[float, float, int]:
        """Returns the mean loss, the accuracy and the number of images, over all processes."""
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        if self.count:
            totals = torch.stack([self.loss_sum.to(device), self.correct.to(device, torch.float64),
                                  torch.tensor(float(self.count), dtype=torch.float64, device=device)])
        if distributed:
            dist.all_reduce(totals)
        loss_sum, correct, count = totals.tolist()
        count = max(count, 1.0)
        return loss_sum / count, correct / count, int(count)


@dataclasses.dataclass
class RunState:
    """
    What changes while training. (Configs are frozen once computed, so the
    mutable state lives here.)
    """
    epoch: int = 0
    history: List[Dict[str, float]] = dataclasses.field(default_factory=list)
    train_meter: EpochMeter = dataclasses.field(default_factory=EpochMeter)
    valid_meter: EpochMeter = dataclasses.field(default_factory=EpochMeter)
    run_path: Optional[Path] = None
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = 'cifar10'


class Configs(TrainValidConfigs):
    """
    ## Configurations

    Every setting of the experiment, with its default. labml computes the others
    (the data, the model, the optimizer, the loaders) from these, when first
    needed, with the functions marked `@option` below; `--set KEY=VALUE`
    overrides any of the plain values.
    """
    # The model, ConvMixer-$h$/$d$: $h$ = `d_model`, $d$ = `n_layers`,
    # $k$ = `kernel_size`, $p$ = `patch_size`, and the activation $\sigma$
    d_model: int = 256
    n_layers: int = 8
    kernel_size: int = 5
    patch_size: int = 2
    activation: str = 'gelu'

    # Training: `epochs` is $T$, `lr` is $\eta_{max}$; `batch_size` is global,
    # shared by the processes of a distributed run
    epochs: int = 25
    batch_size: int = 512
    lr: float = 0.05
    weight_decay: float = 0.005
    seed: int = 0

    # Augmentation: horizontal flips and RandAugment's number of operations
    # and magnitude (0 operations turns it off)
    flip: bool = True
    randaugment_ops: int = 2
    randaugment_magnitude: int = 12

    # Data: the folder with `cifar-10-batches-py/` (empty: the project's `data/`),
    # how many training images to use (0: all), loader worker processes
    data_dir: str = ''
    train_subset: int = 0
    num_workers: int = 2

    # Device and speed. `device_name` is `auto` (CUDA when present), `cpu`, `cuda`
    # or `cuda:N`; the speed switches default to what is fastest on the device
    device_name: str = 'auto'
    device: torch.device
    precision: str
    compile: bool
    channels_last: bool
    fused_optimizer: bool
    augment: str
    sync_bn: bool = False

    # Computed
    dist_info: DistInfo
    data: CIFARData
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    grad_scaler: Optional[torch.amp.GradScaler]
    train_sampler: DistributedSampler
    train_augment: Any
    run_state: RunState
    state_modules: list = []

    def step(self, batch: Any, batch_idx: BatchIndex):
        """
        ### One batch

        The same function trains and evaluates, as labml-helpers' trainer and
        validator call it; `self.mode.is_train` tells which.
        """
        images, labels = speed.to_device_batch(batch[0], batch[1], self.device,
                                               channels_last=self.channels_last)
        state = self.run_state
        if self.mode.is_train:
            # The learning rate for this iteration of the one-cycle schedule
            t = state.epoch + (batch_idx.idx + 1) / batch_idx.total
            for group in self.optimizer.param_groups:
                group['lr'] = one_cycle_lr(t, self.epochs, self.lr)
            self.train_model.train()
            # Forward, backward and the optimizer step, shared with the benchmark
            loss, logits = speed.train_step(self.train_model, self.optimizer, self.grad_scaler,
                                            images, labels, device=self.device,
                                            precision=self.precision)
            state.train_meter.add(loss, logits, labels)
        else:
            # Evaluation uses the model without the `DistributedDataParallel`
            # wrapper: no gradients to share, and the processes may have
            # different numbers of test batches.
            self.model.eval()
            with speed.autocast(self.device, self.precision):
                logits = self.model(images)
                loss = F.cross_entropy(logits.float(), labels)
            state.valid_meter.add(loss, logits, labels)

    def run(self):
        """
        ### The training loop

        labml-helpers' loop knows nothing of starting at a later epoch, so we
        write ours: for each epoch, train, evaluate, log one line, save a
        checkpoint.
        """
        state = self.run_state
        info = self.dist_info
        _ = self.trainer, self.validator
        # `monit.loop` draws the live progress of the epochs on a terminal
        for epoch in monit.loop(range(state.epoch, self.epochs)):
            # Each epoch has its own shuffle, derived from the seed and the epoch
            self.train_sampler.set_epoch(epoch)
            state.train_meter.reset()
            state.valid_meter.reset()

            start = time.perf_counter()
            with self.mode.update(is_train=True):
                with tracker.namespace('train'):
                    self.trainer()
            if info.enabled:
                broadcast_buffers(self.model)
            train_loss, train_acc, n_train = state.train_meter.result(self.device, info.enabled)
            train_seconds = time.perf_counter() - start
            with torch.no_grad():
                with tracker.namespace('valid'):
                    self.validator()
            valid_loss, valid_acc, _ = state.valid_meter.result(self.device, info.enabled)
            seconds = time.perf_counter() - start

            record = dict(epoch=epoch + 1, train_loss=train_loss, train_accuracy=train_acc,
                          valid_loss=valid_loss, valid_accuracy=valid_acc,
                          images_per_second=n_train / train_seconds, seconds=seconds)
            state.history.append(record)
            state.epoch = epoch + 1
            # The checkpoint first: a printed epoch is a saved epoch
            save_checkpoint(self, state)
            if info.is_main:
                tracker.save(epoch + 1, {'loss.train': train_loss, 'accuracy.train': train_acc,
                                         'loss.valid': valid_loss, 'accuracy.valid': valid_acc,
                                         'images_per_second': record['images_per_second']})
                logger.log(format_epoch(record, self.epochs), is_new_line=True, is_reset=True)


# ### Choices that depend on the device

@option(Configs.device)
def _device(c: Configs) -> torch.device:
    return resolve_device(c.device_name, c.dist_info.local_rank)


@option(Configs.dist_info)
def _dist_info(c: Configs) -> DistInfo:
    # A single process; `train` sets the real value under `torchrun`
    return DistInfo()


@option(Configs.precision)
def _precision(c: Configs) -> str:
    return speed.default_settings(c.device).precision


@option(Configs.compile)
def _compile(c: Configs) -> bool:
    return speed.default_settings(c.device).compile


@option(Configs.channels_last)
def _channels_last(c: Configs) -> bool:
    return speed.default_settings(c.device).channels_last


@option(Configs.fused_optimizer)
def _fused(c: Configs) -> bool:
    return speed.default_settings(c.device).fused


@option(Configs.augment)
def _augment(c: Configs) -> str:
    # CPU workers keep up with a CPU; a GPU needs the batched pipeline
    return 'batched' if c.device.type == 'cuda' else 'torchvision'


# ### Data, model and optimizer
#
# The data set, its samplers and the loaders of the two
# [pipelines](cifar10_data.html#data-pipelines) come from
# [CIFAR-10 data](cifar10_data.html); here they are put together with the
# settings above.

@option(Configs.data)
def _data(c: Configs) -> CIFARData:
    data = load_cifar10(c.data_dir)
    if c.train_subset:
        data.train_images = data.train_images[:c.train_subset]
        data.train_labels = data.train_labels[:c.train_subset]
    return data


@option(Configs.model)
def _model(c: Configs) -> nn.Module:
    """
    The model, the same on every process: it is built right after seeding.
    SyncBatchNorm replaces BatchNorm before the model is compiled.
    """
    torch.manual_seed(c.seed)
    model = convmixer(c.d_model, c.n_layers, kernel_size=c.kernel_size, patch_size=c.patch_size,
                      n_classes=len(c.data.classes), activation=c.activation)
    if c.sync_bn and c.dist_info.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = speed.prepare_model(model, c.device, channels_last=c.channels_last, compile=c.compile)
    # From here on each process draws its own augmentations
    seed_everything(c.seed + c.dist_info.rank)
    return model


@option(Configs.train_model)
def _train_model(c: Configs) -> nn.Module:
    """With several processes, `DistributedDataParallel` averages the gradients."""
    if not c.dist_info.enabled:
        return c.model
    from torch.nn.parallel import DistributedDataParallel
    device_ids = [c.device.index] if c.device.type == 'cuda' else None
    return DistributedDataParallel(c.model, device_ids=device_ids)


@option(Configs.optimizer)
def _optimizer(c: Configs) -> torch.optim.Optimizer:
    # AdamW on all parameters, as in the reference; the learning rate is set every step
    return speed.make_optimizer(c.model.parameters(), lr=c.lr, weight_decay=c.weight_decay,
                                device=c.device, fused=c.fused_optimizer)


@option(Configs.grad_scaler)
def _grad_scaler(c: Configs):
    return speed.make_grad_scaler(c.device, c.precision)


@option(Configs.train_sampler)
def _train_sampler(c: Configs) -> DistributedSampler:
    """
    The shuffle of each epoch comes from `seed` and the epoch number, and each
    process takes its share of it. (`DistributedSampler` with one process is
    a plain seeded shuffle.)
    """
    info = c.dist_info
    return DistributedSampler(range(len(c.data.train_labels)), num_replicas=info.world_size,
                              rank=info.rank, shuffle=True, seed=c.seed)


def _per_process_batch(c: Configs) -> int:
    return c.batch_size // c.dist_info.world_size


@option(Configs.train_augment)
def _train_augment(c: Configs):
    from experiments.gpu_augment import BatchAugment
    return BatchAugment(CIFAR10_MEAN, CIFAR10_STD, flip=c.flip, num_ops=c.randaugment_ops,
                        magnitude=c.randaugment_magnitude)


@option(Configs.train_loader)
def _train_loader(c: Configs):
    if c.augment == 'batched':
        return DeviceBatches(c.data.train_images.to(c.device), c.data.train_labels.to(c.device),
                             c.train_sampler, _per_process_batch(c), c.train_augment)
    dataset = ImageDataset(c.data.train_images, c.data.train_labels, torchvision_transform(
        flip=c.flip, num_ops=c.randaugment_ops, magnitude=c.randaugment_magnitude))
    return DataLoader(dataset, batch_size=_per_process_batch(c), sampler=c.train_sampler,
                      num_workers=c.num_workers, pin_memory=c.device.type == 'cuda')


@option(Configs.valid_loader)
def _valid_loader(c: Configs):
    sampler = ShardSampler(len(c.data.test_labels), c.dist_info.rank, c.dist_info.world_size)
    if c.augment == 'batched':
        from experiments.gpu_augment import normalize
        return DeviceBatches(c.data.test_images.to(c.device), c.data.test_labels.to(c.device),
                             sampler, _per_process_batch(c),
                             lambda x: normalize(x, CIFAR10_MEAN, CIFAR10_STD))
    dataset = ImageDataset(c.data.test_images, c.data.test_labels, torchvision_transform())
    return DataLoader(dataset, batch_size=_per_process_batch(c), sampler=sampler,
                      num_workers=c.num_workers, pin_memory=c.device.type == 'cuda')


@option(Configs.run_state)
def _run_state(c: Configs) -> RunState:
    return RunState()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is CUDA when there is a GPU; a distributed run uses the GPU of its local rank."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(name)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', local_rank)
    return device


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


# ## Checkpoints
#
# After every epoch the whole state goes into `checkpoint.pt`. It is written to
# a temporary file in the same folder, flushed to the disk and renamed over the
# old one: a rename is atomic, so a crash at any moment leaves either the
# previous checkpoint or the new one, never half a file.
#
# The random number generators are saved too (Python's, NumPy's, PyTorch's
# CPU and CUDA generators, of every process): augmentations, the data loaders'
# worker seeds and dropout-like draws then continue exactly where they were.

def rng_state() -> Dict[str, Any]:
    state = {'python': random.getstate(), 'torch': torch.get_rng_state()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state['numpy'] = (kind, keys.tolist(), pos, has_gauss, gauss)
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]):
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def atomic_write_bytes(path: Path, write):
    """Call `write(file)` on a temporary file next to `path`, then move it into place."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Make the rename itself durable
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(c: Configs, state: RunState):
    # Every process contributes its generators' states; the first one writes.
    rng = rng_state()
    if c.dist_info.enabled:
        all_rng = [None] * c.dist_info.world_size
        dist.all_gather_object(all_rng, rng)
    else:
        all_rng = [rng]
    if not c.dist_info.is_main:
        return
    checkpoint = {
        'epoch': state.epoch,
        'model': c.model.state_dict(),
        'optimizer': c.optimizer.state_dict(),
        'grad_scaler': c.grad_scaler.state_dict() if c.grad_scaler is not None else None,
        'history': state.history,
        'rng': all_rng,
        'overrides': state.overrides,
        'name': state.name,
        'classes': c.data.classes,
    }
    atomic_write_bytes(state.run_path / 'checkpoint.pt', lambda f: torch.save(checkpoint, f))


def load_checkpoint(c: Configs, checkpoint: Dict[str, Any]):
    state = c.run_state
    c.model.load_state_dict(checkpoint['model'])
    c.optimizer.load_state_dict(checkpoint['optimizer'])
    if c.grad_scaler is not None and checkpoint['grad_scaler'] is not None:
        c.grad_scaler.load_state_dict(checkpoint['grad_scaler'])
    state.epoch = checkpoint['epoch']
    state.history = list(checkpoint['history'])
    rngs = checkpoint['rng']
    if len(rngs) == c.dist_info.world_size:
        set_rng_state(rngs[c.dist_info.rank])
    else:
        # A different number of processes than before: the run goes on, but
        # its random draws no longer match the original's
        seed_everything(c.seed + 1000 * state.epoch + c.dist_info.rank)


# ## Output
#
# labml's screen output redraws one line with carriage returns, which is what
# a terminal needs for a live progress bar. Written to a file or a CI log the
# redraws pile up into one enormous line. When standard output is not a
# terminal we swap labml's console for one that prints only finished lines,
# without colours; the training loop writes one such line per epoch.

_ANSI = re.compile(r'\x1b\[[0-9;]*m')


class _PlainLines:
    def __init__(self, silent: bool):
        self.silent = silent

    def log(self, parts, *, is_new_line: bool, is_reset: bool):
        if self.silent or not is_new_line:
            return
        text = ''.join(p if isinstance(p, str) else p[0] for p in parts)
        text = _ANSI.sub('', text).replace('\r', '').strip()
        if text:
            print(text, flush=True)


def configure_console(info: DistInfo):
    from labml.internal.logger import logger_singleton
    console = logger_singleton()
    if not info.is_main:
        # Only the first process speaks
        console._Logger__destinations = [_PlainLines(silent=True)]
    elif not sys.stdout.isatty():
        console._Logger__destinations = [_PlainLines(silent=False)]


def format_epoch(r: Dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {r['epoch']:{width}d}/{epochs}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_accuracy']:6.2f}%  "
            f"test loss {r['valid_loss']:.4f} acc {100 * r['valid_accuracy']:6.2f}%  "
            f"{r['images_per_second']:8.1f} img/s  {r['seconds']:7.1f} s")


def plot_history(history: List[Dict[str, float]], path: Path):
    """Loss and accuracy per epoch, for training and test data, as a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    epochs = [r['epoch'] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (('train', 'train'), ('valid', 'test')):
        ax_loss.plot(epochs, [r[f'{key}_loss'] for r in history], marker='o', label=label)
        ax_acc.plot(epochs, [100 * r[f'{key}_accuracy'] for r in history], marker='o', label=label)
    ax_loss.set(xlabel='epoch', ylabel='cross-entropy loss', title='Loss')
    ax_acc.set(xlabel='epoch', ylabel='accuracy (%)', title='Accuracy')
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format='png', dpi=100))
    plt.close(fig)


def write_summary(c: Configs, state: RunState) -> Dict[str, Any]:
    history = state.history
    last = history[-1]
    summary = {
        'valid_accuracy': last['valid_accuracy'],
        'valid_loss': last['valid_loss'],
        'train_accuracy': last['train_accuracy'],
        'train_loss': last['train_loss'],
        'epochs': len(history),
        'seconds': sum(r['seconds'] for r in history),
        'images_per_second': float(np.mean([r['images_per_second'] for r in history])),
        'changed_configs': state.overrides,
        'device': str(c.device),
        'world_size': c.dist_info.world_size,
        'classes': c.data.classes,
        'run_uuid': state.run_path.name,
        'history': history,
    }
    text = json.dumps(summary, indent=2)
    atomic_write_bytes(state.run_path / 'summary.json', lambda f: f.write(text.encode()))
    plot_history(history, state.run_path / 'metrics.png')
    return summary


def weights_digest(model: nn.Module) -> str:
    """A SHA-256 of all weights and buffers, to compare processes of a run."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ## Evaluation of a finished run
#
# `--evaluate RUN_UUID` loads a run's last checkpoint, measures test accuracy,
# prints the accuracy of each class and saves the confusion matrix, the count
# of test images of each true class (rows) given each predicted class (columns),
# as `confusion_matrix.png` in the run's folder.

def evaluate_run(run_path: Path, checkpoint: Dict[str, Any], c: Configs) -> Dict[str, Any]:
    c.model.load_state_dict(checkpoint['model'])
    c.model.eval()
    classes = c.data.classes
    n = len(classes)
    confusion = torch.zeros(n * n, dtype=torch.long, device=c.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=c.device)
    with torch.no_grad(), monit.section('Evaluate'):
        for images, labels in c.valid_loader:
            images, labels = speed.to_device_batch(images, labels, c.device, channels_last=c.channels_last)
            with speed.autocast(c.device, c.precision):
                logits = c.model(images).float()
            loss_sum += F.cross_entropy(logits, labels, reduction='sum').double()
            pred = logits.argmax(dim=-1)
            confusion += torch.bincount(labels * n + pred, minlength=n * n)
    confusion = confusion.view(n, n).cpu()
    loss_sum = loss_sum.item()
    total = int(confusion.sum())
    per_class = {name: (confusion[i, i].item() / max(int(confusion[i].sum()), 1)) for i, name in enumerate(classes)}
    result = {'run_uuid': run_path.name, 'epochs_trained': checkpoint['epoch'],
              'test_accuracy': confusion.diag().sum().item() / total, 'test_loss': loss_sum / total,
              'test_images': total, 'per_class_accuracy': per_class, 'confusion_matrix': confusion.tolist()}
    logger.log(f"{'class':<12} {'images':>7} {'accuracy':>9}")
    for i, name in enumerate(classes):
        logger.log(f"{name:<12} {int(confusion[i].sum()):7d} {100 * per_class[name]:8.2f}%")
    text = json.dumps(result, indent=2)
    atomic_write_bytes(run_path / 'evaluation.json', lambda f: f.write(text.encode()))
    plot_confusion(confusion, classes, run_path / 'confusion_matrix.png')
    return result


def plot_confusion(confusion: torch.Tensor, classes: List[str], path: Path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.6 + 0.6 * n))
    ax.imshow(confusion.numpy(), cmap='Blues')
    ax.set_xticks(range(n), classes, rotation=45, ha='right')
    ax.set_yticks(range(n), classes)
    ax.set(xlabel='predicted class', ylabel='true class', title='Confusion matrix (test set)')
    threshold = confusion.max().item() / 2
    for i in range(n):
        for j in range(n):
            v = confusion[i, j].item()
            ax.text(j, i, str(v), ha='center', va='center', fontsize=8,
                    color='white' if v > threshold else 'black')
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format='png', dpi=100))
    plt.close(fig)


# ## Command line
#
# Every plain setting of [`Configs`](#Configs) can be set with `--set`; the
# common ones also have their own flags. All values are checked before any data
# is read, so a typo costs a second, not a download.

# Settings with their own flag: `(flag, config key, type, help)`
NAMED_FLAGS = [
    ('--epochs', 'epochs', int, 'number of epochs, T of the schedule (default 25)'),
    ('--batch-size', 'batch_size', int, 'global batch size (default 512)'),
    ('--lr', 'lr', float, 'peak learning rate of the one-cycle schedule (default 0.05)'),
    ('--d-model', 'd_model', int, 'h, channels of the patch embeddings (default 256)'),
    ('--n-layers', 'n_layers', int, 'd, number of ConvMixer layers (default 8)'),
    ('--kernel-size', 'kernel_size', int, 'k, depth-wise kernel size (default 5)'),
    ('--patch-size', 'patch_size', int, 'p, patch size (default 2)'),
    ('--activation', 'activation', str, f"activation: {', '.join(sorted(ACTIVATIONS))} (default gelu)"),
    ('--train-subset', 'train_subset', int, 'train on the first N training images only (default: all)'),
    ('--seed', 'seed', int, 'random seed (default 0)'),
    ('--device', 'device_name', str, 'auto, cpu, cuda or cuda:N (default auto: CUDA when present)'),
    ('--data-dir', 'data_dir', str, f'folder with {FOLDER_NAME}/ (default: the project\'s data/)'),
    ('--num-workers', 'num_workers', int, 'data loader worker processes (default 2)'),
    ('--precision', 'precision', str, 'fp32, bf16 or fp16 (default: fp32 on CPU, bf16 on CUDA)'),
    ('--augment', 'augment', str, 'torchvision (per image, in workers) or batched (on the device); '
                                  'default: torchvision on CPU, batched on CUDA'),
]
SWITCHES = [
    ('compile', 'compile', 'run the model through torch.compile'),
    ('channels-last', 'channels_last', 'store activations as NHWC'),
    ('fused-optimizer', 'fused_optimizer', 'single-kernel AdamW'),
    ('sync-bn', 'sync_bn', 'batch statistics over all processes of a torchrun run'),
]
# The settings that `--set` accepts, with their types
SETTABLE = {'d_model': int, 'n_layers': int, 'kernel_size': int, 'patch_size': int, 'activation': str,
            'epochs': int, 'batch_size': int, 'lr': float, 'weight_decay': float, 'seed': int,
            'flip': bool, 'randaugment_ops': int, 'randaugment_magnitude': int, 'data_dir': str,
            'train_subset': int, 'num_workers': int, 'device_name': str, 'precision': str,
            'compile': bool, 'channels_last': bool, 'fused_optimizer': bool, 'augment': str,
            'sync_bn': bool}
# Settings a resumed run may change: where things are, not what is computed
RESUME_MAY_CHANGE = {'data_dir', 'device_name', 'num_workers'}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    keys = ', '.join(f'{k} ({t.__name__}, default {_default_text(k)})' for k, t in SETTABLE.items())
    parser = _Parser(prog='cifar10.py', description='Train ConvMixer on CIFAR-10 with labml.',
                     epilog=f'Keys for --set: {keys}.')
    metavars = {'data_dir': 'DIR', 'device_name': 'DEVICE', 'activation': 'NAME',
                'precision': '{fp32,bf16,fp16}', 'augment': '{torchvision,batched}'}
    for flag, key, type_, help_ in NAMED_FLAGS:
        parser.add_argument(flag, dest=key, type=str, metavar=metavars.get(key, type_.__name__.upper()),
                            help=help_)
    for flag, key, help_ in SWITCHES:
        parser.add_argument(f'--{flag}', dest=key, action=argparse.BooleanOptionalAction, help=help_)
    parser.add_argument('--set', dest='set_values', action='append', default=[], metavar='KEY=VALUE',
                        help='set any setting (repeatable); the keys are listed below')
    parser.add_argument('--name', default=None, help='experiment name, the folder under logs/ (default cifar10)')
    parser.add_argument('--logs-dir', default=None,
                        help="where runs are written (default: the project's logs/)")
    parser.add_argument('--resume', metavar='RUN_UUID', help='continue a run from its last checkpoint')
    parser.add_argument('--evaluate', metavar='RUN_UUID', help="evaluate a run's last checkpoint on the test set")
    parser.add_argument('--weights-digest', metavar='DIR', default=None,
                        help='write the SHA-256 of the final weights of each process to DIR/rank<N>.sha256')
    return parser


def config_default(key: str) -> Any:
    """The default value declared in `Configs`, or `None` when an option computes it."""
    item = Configs.__dict__.get(key, None)
    return item.value if item is not None and item.has_value else None


def _default_text(key: str) -> str:
    value = config_default(key)
    if value is None:
        return 'device dependent'
    return repr(value) if isinstance(value, str) else str(value)


def parse_value(key: str, text: str):
    type_ = SETTABLE[key]
    if type_ is bool:
        if text.lower() in ('1', 'true', 'yes', 'on'):
            return True
        if text.lower() in ('0', 'false', 'no', 'off'):
            return False
        raise UserError(f"{key} must be true or false, got {text!r}", 2)
    try:
        return type_(text)
    except ValueError:
        raise UserError(f"{key} must be {'an integer' if type_ is int else 'a number'}, got {text!r}", 2) from None


def check_values(values: Dict[str, Any], world_size: int):
    """Reject values that cannot work, with the reason."""
    def need(condition: bool, message: str):
        if not condition:
            raise UserError(message, 2)
    v = {k: values[k] for k in values}
    for key in ('epochs', 'batch_size', 'd_model', 'n_layers', 'kernel_size', 'patch_size'):
        if key in v:
            need(v[key] >= 1, f"{key} must be at least 1, got {v[key]}")
    for key in ('train_subset', 'num_workers', 'randaugment_ops', 'randaugment_magnitude'):
        if key in v:
            need(v[key] >= 0, f"{key} must not be negative, got {v[key]}")
    for key in ('lr', 'weight_decay'):
        if key in v:
            need(math.isfinite(v[key]) and v[key] >= 0, f"{key} must be a non-negative number, got {v[key]}")
    if 'lr' in v:
        need(v['lr'] > 0, f"lr must be positive, got {v['lr']}")
    if 'patch_size' in v:
        need(v['patch_size'] <= 32, f"patch_size must be at most 32 (the image size), got {v['patch_size']}")
    if 'randaugment_magnitude' in v:
        need(v['randaugment_magnitude'] <= 30, "randaugment_magnitude must be 0..30")
    if 'activation' in v:
        need(v['activation'].lower() in ACTIVATIONS,
             f"unknown activation {v['activation']!r}: choose one of {', '.join(sorted(ACTIVATIONS))}")
        v['activation'] = v['activation'].lower()
    if 'precision' in v:
        need(v['precision'] in speed.PRECISIONS,
             f"unknown precision {v['precision']!r}: choose one of {', '.join(speed.PRECISIONS)}")
    if 'augment' in v:
        need(v['augment'] in ('torchvision', 'batched'),
             f"unknown augment {v['augment']!r}: choose torchvision or batched")
    if v.get('data_dir'):
        # Stored with the run, so make it independent of the current folder
        v['data_dir'] = str(Path(v['data_dir']).expanduser().resolve())
    if 'device_name' in v:
        try:
            device = resolve_device(v['device_name'])
        except RuntimeError:
            raise UserError(f"unknown device {v['device_name']!r}: use auto, cpu, cuda or cuda:N", 2) from None
        need(device.type in ('cpu', 'cuda'), f"device must be auto, cpu or cuda, got {v['device_name']!r}")
        if device.type == 'cuda':
            need(torch.cuda.is_available(), "device cuda was asked for, but PyTorch sees no CUDA GPU")
            need(device.index < torch.cuda.device_count(), f"there is no GPU {device}")
    batch_size = v.get('batch_size', config_default('batch_size'))
    need(batch_size % world_size == 0,
         f"batch_size {batch_size} must be divisible by the number of processes, {world_size}")
    return v


def overrides_from_args(args: argparse.Namespace, world_size: int) -> Dict[str, Any]:
    """The settings given on the command line, parsed and checked."""
    texts = {}
    for flag, key, _, _ in NAMED_FLAGS:
        if getattr(args, key) is not None:
            texts[key] = getattr(args, key)
    values = {}
    for item in args.set_values:
        if '=' not in item:
            raise UserError(f"--set takes KEY=VALUE, got {item!r}", 2)
        key, text = item.split('=', 1)
        key = key.strip().replace('-', '_')
        if key not in SETTABLE:
            raise UserError(f"unknown setting {key!r} in --set (valid keys are listed in --help)", 2)
        texts[key] = text.strip()
    for key, text in texts.items():
        values[key] = parse_value(key, text)
    for _, key, _ in SWITCHES:
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return check_values(values, world_size)


def find_run(uuid: str) -> Path:
    if not re.fullmatch(r'[0-9a-zA-Z_-]+', uuid):
        raise UserError(f"{uuid!r} is not a run uuid", 2)
    experiments_path = lab.get_experiments_path()
    matches = sorted(experiments_path.glob(f'*/{uuid}')) if experiments_path.is_dir() else []
    if not matches:
        raise UserError(f"no run {uuid} in {experiments_path}")
    return matches[0]


def read_checkpoint(run_path: Path) -> Dict[str, Any]:
    path = run_path / 'checkpoint.pt'
    if not path.is_file():
        raise UserError(f"run {run_path.name} has no checkpoint yet ({path} is missing)")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: cannot read the checkpoint ({e})") from None


def _release_stale_pid(run_path: Path):
    """labml refuses to start a run whose `run.pid` exists; a killed run leaves one."""
    pid_path = run_path / 'run.pid'
    if not pid_path.exists():
        return
    try:
        pid = int(pid_path.read_text().strip())
    except ValueError:
        pid = None
    if pid is not None and pid != os.getpid() and _process_alive(pid):
        raise UserError(f"run {run_path.name} is still running (process {pid}); stop it first")
    pid_path.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent has not collected it yet is a zombie: dead
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return True


# ## Putting it together

def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.logs_dir:
        lab.configure({'experiments_path': str(Path(args.logs_dir).expanduser().resolve())})
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if args.resume and args.evaluate:
        raise UserError("--resume and --evaluate cannot be used together", 2)
    overrides = overrides_from_args(args, world_size)
    if args.name is not None and not re.fullmatch(r'\w[\w.-]*', args.name):
        raise UserError(f"--name must be a plain folder name (letters, digits, '_', '-', '.'), got {args.name!r}", 2)

    checkpoint = None
    run_path = None
    name = args.name or 'cifar10'
    if args.resume or args.evaluate:
        run_path = find_run(args.resume or args.evaluate)
        checkpoint = read_checkpoint(run_path)
        changed = set(overrides) - RESUME_MAY_CHANGE
        if args.resume and changed:
            raise UserError(f"a resumed run keeps its own settings; drop {', '.join(sorted(changed))}", 2)
        # The run's own settings, plus where to find things on this machine
        overrides = {**checkpoint['overrides'], **{k: v for k, v in overrides.items() if k in RESUME_MAY_CHANGE}}
        name = checkpoint['name']

    device = resolve_device(overrides.get('device_name', 'auto'))
    if device.type == 'cpu':
        # Numbers too small for a normal float ("subnormals") appear as the
        # learning rate and the gradients shrink; x86 CPUs compute with them
        # many times slower. Flushing them to zero costs no accuracy.
        torch.set_flush_denormal(True)
    if overrides.get('sync_bn') and device.type != 'cuda':
        raise UserError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run on CPUs", 2)
    info = init_distributed(device)
    configure_console(info)
    try:
        if args.evaluate:
            return evaluate_command(run_path, checkpoint, overrides)
        return train(args, overrides, info, name, run_path, checkpoint)
    finally:
        if info.enabled:
            dist.destroy_process_group()


def _make_configs(info: DistInfo) -> Configs:
    c = Configs()
    # The process's place in a distributed run is a fact, not a setting
    c.dist_info = info
    return c


def evaluate_command(run_path: Path, checkpoint: Dict[str, Any], overrides: Dict[str, Any]) -> int:
    c = _make_configs(DistInfo())
    # No compilation for a single pass over the test set
    experiment.evaluate()
    experiment.configs(c, {**overrides, 'compile': False, 'num_workers': overrides.get('num_workers', 0)})
    result = evaluate_run(run_path, checkpoint, c)
    logger.log(f"test accuracy {100 * result['test_accuracy']:.2f}% "
               f"({result['test_images']} images, epoch {result['epochs_trained']}); "
               f"confusion matrix in {run_path / 'confusion_matrix.png'}")
    return 0


def train(args, overrides: Dict[str, Any], info: DistInfo, name: str,
          run_path: Optional[Path], checkpoint: Optional[Dict[str, Any]]) -> int:
    seed_everything(overrides.get('seed', config_default('seed')))
    c = _make_configs(info)
    uuid = run_path.name if run_path is not None else None
    if info.is_main:
        if run_path is not None:
            _release_stale_pid(run_path)
        experiment.create(name=name, uuid=uuid, writers={'screen', 'file'})
    experiment_configs = dict(overrides)
    if info.is_main:
        experiment.configs(c, experiment_configs)
    else:
        from labml.internal.configs.processor import ConfigProcessor
        ConfigProcessor(c, experiment_configs)

    # Read the data first: a missing data set should stop the run before the
    # model is compiled
    _ = c.data
    state = c.run_state
    state.overrides = dict(overrides)
    state.name = name
    if info.is_main:
        state.run_path = _run_path_of_experiment()
    _ = c.model, c.train_model, c.optimizer, c.grad_scaler
    if checkpoint is not None:
        load_checkpoint(c, checkpoint)
        if info.is_main:
            logger.log(f"resuming run {run_path.name} after epoch {state.epoch}")
    if info.is_main:
        with experiment.start():
            c.run()
    else:
        c.run()

    if args.weights_digest:
        folder = Path(args.weights_digest)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'rank{info.rank}.sha256').write_text(weights_digest(c.model) + '\n')
    if info.is_main:
        if not state.history:
            raise UserError("nothing to summarise: the run has no finished epoch")
        summary = write_summary(c, state)
        logger.log(f"test accuracy {100 * summary['valid_accuracy']:.2f}% after {summary['epochs']} epochs; "
                   f"run folder {state.run_path}")
    return 0


def _run_path_of_experiment() -> Path:
    from labml.internal.experiment import experiment_singleton
    return Path(experiment_singleton().run.run_path)


def cli():
    try:
        code = main()
    except UserError as e:
        print(f"cifar10.py: error: {e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt:
        print("cifar10.py: interrupted; the last finished epoch is saved, "
              "continue with --resume RUN_UUID", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)


if __name__ == '__main__':
    cli()
