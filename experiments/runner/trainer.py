r"""
---
title: The trainer
summary: >
  What every ConvMixer experiment shares: the settings of the model, the
  schedule and the device, the speed defaults, DistributedDataParallel, the
  optimizer, and the epoch loop with a checkpoint after every epoch.
nav_order: 4
---

# The trainer

An experiment such as [CIFAR-10](../cifar10.html) or [ImageNet](../imagenet.html)
is a short subclass of [`TrainerConfigs`](#TrainerConfigs): it sets the
recipe's defaults and supplies the data, the loaders, the model and its
learning rate schedule. The rest is here: the settings every experiment has
(the [command line](cli.html) reads each one's help from the end of its
line), the device and its fastest [speed settings](speed.html), the model as
it is trained (on the device, compiled, in `DistributedDataParallel` under
`torchrun`), AdamW, and [the epoch loop](#the-epoch-loop).

`TrainerConfigs` is a labml `BaseConfigs`: a computed config (the model, the
loaders) is made by its `@option` function the first time it is used. Two
values are not settings but facts that the [launcher](launch.html) decides
from the command line before anything is computed: the process's place in a
distributed run (`dist_info`) and what the run does (`run_mode`).
"""

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn
from torch.utils.data import DistributedSampler

from labml import logger, monit, tracker
from labml.configs import BaseConfigs, option

from experiments.runner import cli, runs, speed
from experiments.runner.distributed import DistInfo, ShardSampler, broadcast_buffers, \
    resolve_device
from experiments.runner.errors import UserError
from experiments.runner.metrics import LossWatch, Meter, Result, evaluate
from experiments.runner.reports import format_epoch
from labml_convmixer.variations import ACTIVATIONS


@dataclasses.dataclass(frozen=True)
class RunMode:
    """
    ## What the run does

    Decided from the command line before any config is computed. The options
    that read it say so: an evaluation needs the test data only, and weights
    that a checkpoint will replace need not be loaded.
    """
    # `--evaluate` or `--eval-only`: one pass over the test data, no training
    evaluating: bool = False
    # `--resume` or `--evaluate`: the run's checkpoint replaces the starting weights
    restoring: bool = False


@dataclasses.dataclass
class Run:
    """
    ## A run

    What the [launcher](launch.html) decided from the command line, and what
    changes while training (labml's configs are fixed once computed).
    """
    configs_class: type
    # The settings to compute the configs with, kept with the run; for
    # `--resume` and `--evaluate` the run's own
    overrides: Dict[str, Any]
    mode: RunMode
    info: DistInfo
    # The experiment (its script's name) and the run's name, the folder under `logs/`
    experiment: str
    name: str
    # The run's folder: the one to resume or evaluate, or, in the first
    # process, the one labml created; and the checkpoint to start from
    path: Optional[Path] = None
    checkpoint: Optional[Dict[str, Any]] = None
    epoch: int = 0
    history: List[Dict[str, float]] = dataclasses.field(default_factory=list)
    # The last test pass: its number of images and the accuracy of each class
    valid_details: Dict[str, Any] = dataclasses.field(default_factory=dict)


class TrainerConfigs(BaseConfigs):
    """
    ## Configurations

    A setting without a value here is part of the recipe: each experiment sets
    it. Those computed by an `@option` (`precision`, `compile`, ...) default to
    what is fastest on the device.
    """
    # The model, ConvMixer-$h$/$d$ with kernel $k$ and patch $p$
    d_model: int  # h, channels of the patch embeddings
    n_layers: int  # d, number of ConvMixer layers
    kernel_size: int  # k, depth-wise kernel size
    patch_size: int  # p, patch size
    activation: str  # the activation: gelu, relu, mish or silu

    # The schedule
    epochs: int  # T, number of epochs
    batch_size: int  # global batch size, shared by the processes of a distributed run
    lr: float  # peak learning rate
    weight_decay: float  # AdamW's weight decay
    adam_eps: float  # AdamW's epsilon, added to the root of the second moment
    clip_grad: float  # clip the gradients' norm to this before each step (0: never)
    seed: int = 0  # random seed

    # Data
    data_dir: str = ''  # folder of the data set; empty: under the project's data/
    train_subset: int = 0  # train on N of the training images only (0: all)
    num_workers: int = 2  # data loader worker processes

    # The device and the speed switches
    device_name: str = 'auto'  # auto, cpu, cuda or cuda:N (auto: CUDA when present)
    precision: str  # fp32, bf16, fp16 or bf16-plan
    compile: bool  # run the model through torch.compile
    channels_last: bool  # store activations as NHWC
    fused_optimizer: bool  # single-kernel AdamW
    augment: str  # torchvision (per image, in workers) or batched (on the device)
    keep_memory: bool  # keep freed memory in the process for the next tensors (glibc)
    sync_bn: bool = False  # batch statistics over all processes of a torchrun run (CUDA)

    # Not a setting (no help text): an experiment whose data has many classes
    # sets it, to add the top-5 accuracy to each epoch's line and record
    report_top5: bool = False

    # Given by the launcher before anything is computed
    dist_info: DistInfo
    run_mode: RunMode

    # Computed. `data` is the experiment's own; it names its classes in `data.classes`
    device: torch.device
    data: Any
    train_loader: Any
    valid_loader: Any
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    grad_scaler: Optional[torch.amp.GradScaler]

    # ### Tools for the experiment's options

    def prepare(self, model: nn.Module) -> nn.Module:
        """
        The model as it is trained: SyncBatchNorm when asked for (before
        compiling), on the device, in the chosen memory format, compiled, in a
        process that [keeps freed memory](speed.html#keep_freed_memory) when
        asked to (the default on CPU). Call it right after building the model
        from `seed`, so every process starts from the same weights; from here
        on each process draws its own augmentations.
        """
        if self.sync_bn and self.dist_info.enabled:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.keep_memory:
            speed.keep_freed_memory()
        model = speed.prepare_model(model, self.device, channels_last=self.channels_last,
                                    compile=self.compile, precision=self.precision)
        runs.seed_everything(self.seed + self.dist_info.rank)
        return model

    def per_process_batch(self) -> int:
        # (A method: labml would take a property for a config.)
        return self.batch_size // self.dist_info.world_size

    def shuffled_sampler(self, n: int) -> DistributedSampler:
        """
        The training order: each epoch's shuffle comes from `seed` and the epoch
        number, and each process takes its share of it (with one process, a
        plain seeded shuffle).
        """
        info = self.dist_info
        return DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank,
                                  shuffle=True, seed=self.seed)

    def shard_sampler(self, n: int) -> ShardSampler:
        """The test order: each process evaluates its own share, in order."""
        return ShardSampler(n, self.dist_info.rank, self.dist_info.world_size)

    def summary_facts(self) -> Dict[str, Any]:
        """What the experiment adds to `summary.json` (the transforms, ...)."""
        return {}

    def learning_rate(self, t: float) -> float:
        """The recipe's schedule: the learning rate at fractional epoch `t`."""
        raise NotImplementedError

    def evaluate(self) -> Result:
        """One pass of the model over the test data."""
        return evaluate(self.model, self.valid_loader, list(self.data.classes),
                        device=self.device, precision=self.precision,
                        channels_last=self.channels_last, distributed=self.dist_info.enabled)


# ## The epoch loop
#
# For each epoch: train, test, save a checkpoint, log one line. The checkpoint
# comes first: a printed epoch is a saved epoch.
#
# A loss that is not finite stops the run (see the [`LossWatch`](metrics.html#LossWatch)):
# on a CPU at that step, on a GPU at the next check, at most `CUDA_CHECK_EVERY`
# steps later. An epoch whose test loss is not finite stops it too. Either way
# the epoch gets no checkpoint, so the one on disk is the last finite one.

CUDA_CHECK_EVERY = 20


def diverged(c: 'TrainerConfigs', run: Run, what: str) -> UserError:
    kept = (f"the checkpoint of epoch {run.epoch}, the last finite one, is kept"
            if run.epoch else "no checkpoint was written")
    return UserError(f"{what} is not finite (NaN or inf); stopped: {kept}; "
                     f"train with a lower learning rate than --lr {c.lr:g}")


def train(c: TrainerConfigs, run: Run):
    """Train from epoch `run.epoch` to `c.epochs`; `monit.loop` draws the progress."""
    model, optimizer, loader = c.train_model, c.optimizer, c.train_loader
    classes, info = list(c.data.classes), c.dist_info
    for epoch in monit.loop(range(run.epoch, c.epochs)):
        # Each epoch has its own shuffle, derived from the seed and the epoch
        loader.sampler.set_epoch(epoch)
        start = time.perf_counter()
        model.train()
        meter = Meter(len(classes), c.device)
        watch = LossWatch(len(loader), c.device,
                          every=CUDA_CHECK_EVERY if c.device.type == 'cuda' else 1)
        for i, (images, labels) in monit.enum('train', loader):
            images, labels = speed.to_device_batch(images, labels, c.device,
                                                   channels_last=c.channels_last)
            # The schedule is a function of the fractional epoch
            # $t = \text{epoch} + \frac{i + 1}{\text{batches per epoch}}$ after
            # batch $i$: a resumed run needs only the epoch to continue it.
            for group in optimizer.param_groups:
                group['lr'] = c.learning_rate(epoch + (i + 1) / len(loader))
            # The same step as the benchmark's, in [speed](speed.html#train_step)
            try:
                loss, logits = speed.train_step(model, optimizer, c.grad_scaler, images,
                                                labels, device=c.device, precision=c.precision)
            except ValueError as e:
                raise lone_value(e, images.shape[0]) from None
            meter.add(loss, logits, labels)
            bad = watch.add(i, loss, info.enabled)
            if bad is not None:
                break
        else:
            bad = watch.check(info.enabled)
        if bad is not None:
            raise diverged(c, run, f"the training loss of step {epoch * len(loader) + bad + 1} "
                                     f"(epoch {epoch + 1}, batch {bad + 1})")
        if info.enabled:
            broadcast_buffers(c.model)
        trained = meter.result(info.enabled)
        train_seconds = time.perf_counter() - start
        valid = c.evaluate()
        if not math.isfinite(valid.loss):
            raise diverged(c, run, f"the test loss after epoch {epoch + 1}")

        record = dict(epoch=epoch + 1, train_loss=trained.loss,
                      train_accuracy=trained.accuracy, valid_loss=valid.loss,
                      valid_accuracy=valid.accuracy,
                      images_per_second=trained.images / train_seconds,
                      seconds=time.perf_counter() - start)
        if c.report_top5:
            record['valid_top5'] = valid.top5
        run.valid_details = {'valid_images': valid.images, 'per_class_accuracy':
                               dict(zip(classes, valid.per_class()))}
        run.history.append(record)
        run.epoch = epoch + 1
        runs.save_checkpoint(c, run)
        if info.is_main:
            tracker.save(epoch + 1, {'loss.train': trained.loss,
                                     'accuracy.train': trained.accuracy,
                                     'loss.valid': valid.loss,
                                     'accuracy.valid': valid.accuracy,
                                     'images_per_second': record['images_per_second']})
            logger.log(format_epoch(record, c.epochs), is_new_line=True, is_reset=True)


def lone_value(error: ValueError, batch: int) -> Exception:
    r"""
    Batch norm in training divides by the spread of each channel over the
    batch and the patch grid. With a $1 \times 1$ grid (a patch as large as
    the image) a last batch of one image gives it one value per channel,
    which has no spread, and PyTorch refuses: the user's fix is a batch size,
    a subset or a patch size that avoids it.
    """
    if 'Expected more than 1 value per channel' not in str(error):
        return error
    return UserError(f"a batch of {batch} image{'s' if batch > 1 else ''} on a 1 x 1 patch "
                     f"grid gives batch norm one value per channel; change --batch-size or "
                     f"--train-subset so that the last batch has two or more images, or "
                     f"use a smaller --patch-size")


# ## Checks of the shared settings
#
# An experiment adds its own to these (for example the largest patch its
# images allow).

CHECKS = {
    **{key: (cli.at_least(1),) for key in ('epochs', 'batch_size', 'd_model', 'n_layers',
                                           'kernel_size', 'patch_size')},
    **{key: (cli.at_least(0),) for key in ('train_subset', 'num_workers')},
    'lr': (cli.positive,),
    'weight_decay': (cli.non_negative,),
    'activation': (cli.one_of(ACTIVATIONS),),
    'precision': (cli.one_of(speed.PRECISIONS),),
    'augment': (cli.one_of(('torchvision', 'batched')),),
}
# For the recipes that augment with RandAugment
RANDAUGMENT_CHECKS = {
    'randaugment_ops': (cli.at_least(0),),
    'randaugment_magnitude': (cli.at_least(0), cli.at_most(30)),
}


# ## Computed configs
#
# In a distributed run each process takes the GPU of its local rank.

@option(TrainerConfigs.device)
def _device(c: TrainerConfigs) -> torch.device:
    return resolve_device(c.device_name, c.dist_info.local_rank)


@option(TrainerConfigs.dist_info)
def _dist_info(c: TrainerConfigs) -> DistInfo:
    # A single process, when no launcher gave the real value
    return DistInfo()


@option(TrainerConfigs.run_mode)
def _run_mode(c: TrainerConfigs) -> RunMode:
    # Training from the starting weights, when no launcher said otherwise
    return RunMode()


# The speed switches default to the choices of `speed.default_settings` for
# the device, measured with the [benchmark](../../benchmarks/train_speed.html).
# Each is its own option, so that setting one keeps the others' defaults.

def _speed_default(field: str):
    return lambda c: getattr(speed.default_settings(c.device), field)


for _key, _field in (('precision', 'precision'), ('compile', 'compile'),
                     ('channels_last', 'channels_last'), ('fused_optimizer', 'fused'),
                     ('augment', 'augment'), ('keep_memory', 'keep_memory')):
    option(getattr(TrainerConfigs, _key), 'device_default')(_speed_default(_field))


@option(TrainerConfigs.train_model)
def _train_model(c: TrainerConfigs) -> nn.Module:
    """With several processes, `DistributedDataParallel` averages the gradients."""
    if not c.dist_info.enabled:
        return c.model
    from torch.nn.parallel import DistributedDataParallel
    device_ids = [c.device.index] if c.device.type == 'cuda' else None
    return DistributedDataParallel(c.model, device_ids=device_ids)


@option(TrainerConfigs.optimizer)
def _optimizer(c: TrainerConfigs) -> torch.optim.Optimizer:
    r"""
    AdamW on all parameters, as in the paper's reference code, with the
    recipe's weight decay and $\epsilon$, and its gradient clipping as a hook.
    The learning rate given here is replaced at every step by the schedule's.
    """
    optimizer = speed.make_optimizer(c.model.parameters(), lr=c.lr,
                                     weight_decay=c.weight_decay, eps=c.adam_eps,
                                     device=c.device, fused=c.fused_optimizer)
    if c.clip_grad > 0:
        optimizer.register_step_pre_hook(clip_before_step(c.clip_grad))
    return optimizer


def clip_before_step(max_norm: float):
    """
    Gradient clipping as a hook that runs just before each optimizer step,
    after the gradients of all processes are averaged. A fused AdamW stepped by
    fp16's `GradScaler` still holds the scaled gradients here, and the scale
    in `grad_scale`: the limit is scaled with them.
    """
    def hook(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group['params']
                  if p.grad is not None]
        scale = getattr(optimizer, 'grad_scale', None)
        nn.utils.clip_grad_norm_(params, max_norm if scale is None
                                 else max_norm * float(scale))
    return hook


@option(TrainerConfigs.grad_scaler)
def _grad_scaler(c: TrainerConfigs):
    return speed.make_grad_scaler(c.device, c.precision)
