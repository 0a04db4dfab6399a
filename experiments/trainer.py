"""
---
title: The trainer
summary: >
  What every ConvMixer experiment shares: the settings of the model, the
  schedule and the device, the speed defaults, DistributedDataParallel, the
  epoch loop with a checkpoint after every epoch, and the loss and accuracy
  meters.
nav_order: 7
---

# The trainer

An experiment such as [CIFAR-10](cifar10.html) or [ImageNet](imagenet.html)
is a short subclass of [`TrainerConfigs`](#TrainerConfigs): it sets the
recipe's defaults and supplies the data loaders, the model, the optimizer and
its learning rate schedule. Everything else lives here:

* the settings every experiment has, each with its help text at the end of its
  line (the [command line](cli.html) reads it from there);
* the device and the [speed settings](speed.html) that are fastest on it;
* the model as it is trained: moved to the device, compiled, and wrapped in
  `DistributedDataParallel` under `torchrun` ([distributed training](distributed.html));
* the `step` that trains on (or evaluates) one batch, and the epoch loop:
  train, evaluate, log one line, and write a [checkpoint](runs.html) from
  which `--resume` can continue exactly;
* the meters: loss, top-1 and top-5 accuracy, and the accuracy of each class.

It builds on labml-helpers' `TrainValidConfigs`, whose trainer and validator
run `step` over the training and test loaders, and on labml's configs: a
computed config (the model, the loaders) is made by the function marked
`@option` for it, the first time it is used.
"""

import dataclasses
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from labml import logger, monit, tracker
from labml.configs import option
from labml_helpers.train_valid import TrainValidConfigs

from experiments import cli, runs, speed
from experiments.distributed import DistInfo, ShardSampler, broadcast_buffers
from experiments.reports import format_epoch
from labml_convmixer.variations import ACTIVATIONS


class EpochMeter:
    """
    ## Loss and accuracy of an epoch

    Sums stay on the device as tensors. Reading a value from a GPU waits for
    all queued work, so doing it every batch would stall the pipeline; we read
    once per epoch (and add up the processes' sums there). Besides the top-1
    hits it counts top-5 hits (the label among the five highest logits) and,
    for each class, its images and top-1 hits: the per-class accuracy of the
    report.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.loss_sum = self.correct = self.top5 = self.per_class = None
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor):
        n, logits = labels.shape[0], logits.detach()
        hits = logits.argmax(dim=-1) == labels
        top = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        sums = {'loss_sum': loss.detach().double() * n, 'correct': hits.sum(),
                'top5': (top == labels[:, None]).any(dim=-1).sum()}
        # Images and hits per class. `index_add_` keeps the sizes fixed: a
        # `bincount` would read the largest label back from the device.
        per_class = torch.zeros(2, logits.shape[-1], dtype=torch.float64,
                                device=labels.device)
        per_class[0].index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
        per_class[1].index_add_(0, labels, hits.double())
        sums['per_class'] = per_class
        for key, value in sums.items():
            total = getattr(self, key)
            setattr(self, key, value if total is None else total + value)
        self.count += n

    def result(self, device: torch.device, distributed: bool,
               n_classes: int = 0) -> 'MeterResult':
        """The numbers over all processes; `n_classes` sizes an empty meter's counts."""
        totals = torch.zeros(4, dtype=torch.float64, device=device)
        per_class = torch.zeros(2, n_classes, dtype=torch.float64, device=device)
        if self.count:
            totals = torch.stack([self.loss_sum.to(device),
                                  self.correct.to(device, torch.float64),
                                  self.top5.to(device, torch.float64),
                                  torch.tensor(float(self.count), dtype=torch.float64,
                                               device=device)])
            per_class = self.per_class.to(device)
        if distributed:
            torch.distributed.all_reduce(totals)
            torch.distributed.all_reduce(per_class)
        loss_sum, correct, top5, count = totals.tolist()
        count = max(count, 1.0)
        images, hits = per_class.tolist() if per_class.numel() else ([], [])
        return MeterResult(loss_sum / count, correct / count, top5 / count, int(count),
                           [h / max(i, 1.0) for i, h in zip(images, hits)])


@dataclasses.dataclass
class MeterResult:
    loss: float
    accuracy: float
    top5: float
    count: int
    # The top-1 accuracy of each class, in the order of the class indices
    per_class: List[float]


@dataclasses.dataclass
class RunState:
    """What changes while training (labml's configs are fixed once computed)."""
    epoch: int = 0
    history: List[Dict[str, float]] = dataclasses.field(default_factory=list)
    train_meter: EpochMeter = dataclasses.field(default_factory=EpochMeter)
    valid_meter: EpochMeter = dataclasses.field(default_factory=EpochMeter)
    run_path: Optional[Path] = None
    # The settings given on the command line, kept with the run
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = ''
    # What the launcher tells the experiment's options: only the test data is
    # needed (no training), and a checkpoint will replace the model's weights
    # (so loading starting weights would be wasted)
    evaluating: bool = False
    restoring: bool = False
    # The last test pass: its number of images and the accuracy of each class
    valid_details: Dict[str, Any] = dataclasses.field(default_factory=dict)


class TrainerConfigs(TrainValidConfigs):
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
    seed: int = 0  # random seed

    # Data
    data_dir: str = ''  # folder of the data set; empty: under the project's data/
    train_subset: int = 0  # train on N of the training images only (0: all)
    num_workers: int = 2  # data loader worker processes

    # The device and the speed switches
    device_name: str = 'auto'  # auto, cpu, cuda or cuda:N (auto: CUDA when present)
    precision: str  # fp32, bf16 or fp16
    compile: bool  # run the model through torch.compile
    channels_last: bool  # store activations as NHWC
    fused_optimizer: bool  # single-kernel AdamW
    augment: str  # torchvision (per image, in workers) or batched (on the device)
    keep_memory: bool  # keep freed memory in the process for the next tensors (glibc)
    sync_bn: bool = False  # batch statistics over all processes of a torchrun run (CUDA)

    # Not a setting (no help text): an experiment whose data has many classes
    # sets it, to add the top-5 accuracy to each epoch's line and record
    report_top5: bool = False

    # Computed. `data` is the experiment's own; it names its classes in `data.classes`
    device: torch.device
    dist_info: DistInfo
    data: Any
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer
    grad_scaler: Optional[torch.amp.GradScaler]
    run_state: RunState
    state_modules: list = []

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
                                    compile=self.compile)
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

    # ### Training and evaluating one batch

    def learning_rate(self, t: float) -> float:
        """The recipe's schedule: the learning rate at fractional epoch `t`."""
        raise NotImplementedError

    def step(self, batch, batch_idx):
        """
        labml-helpers' trainer and validator both call `step`;
        `self.mode.is_train` tells which. Training sets the learning rate of
        this iteration, then runs forward, backward and the optimizer step.
        The schedule is a function of the fractional epoch
        $t = \text{epoch} + \frac{i + 1}{\text{batches per epoch}}$ after
        batch $i$, so the position in it is just the epoch and batch counters:
        a resumed run needs nothing more to continue it.
        """
        images, labels = self.to_device(batch)
        if self.mode.is_train:
            t = self.run_state.epoch + (batch_idx.idx + 1) / batch_idx.total
            self.train_batch(images, labels, lr=self.learning_rate(t))
        else:
            self.eval_batch(images, labels)

    def to_device(self, batch: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        return speed.to_device_batch(batch[0], batch[1], self.device,
                                     channels_last=self.channels_last)

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor, lr: float):
        """Forward, backward and the optimizer step at learning rate `lr`."""
        for group in self.optimizer.param_groups:
            group['lr'] = lr
        self.train_model.train()
        # The same step as the benchmark's, in experiments/speed.py
        loss, logits = speed.train_step(self.train_model, self.optimizer, self.grad_scaler,
                                        images, labels, device=self.device,
                                        precision=self.precision)
        self.run_state.train_meter.add(loss, logits, labels)

    def eval_batch(self, images: torch.Tensor, labels: torch.Tensor):
        # Without the `DistributedDataParallel` wrapper: no gradients to share,
        # and the processes may have different numbers of test batches.
        self.model.eval()
        with speed.autocast(self.device, self.precision):
            logits = self.model(images)
            loss = F.cross_entropy(logits.float(), labels)
        self.run_state.valid_meter.add(loss, logits, labels)

    # ### The epoch loop

    def run(self):
        """
        labml-helpers' loop knows nothing of starting at a later epoch, so we
        write ours: for each epoch, train, evaluate, save a checkpoint, log one
        line. The checkpoint comes first: a printed epoch is a saved epoch.
        """
        state, info = self.run_state, self.dist_info
        _ = self.trainer, self.validator
        # `monit.loop` draws the live progress of the epochs on a terminal
        for epoch in monit.loop(range(state.epoch, self.epochs)):
            # Each epoch has its own shuffle, derived from the seed and the epoch
            self.train_loader.sampler.set_epoch(epoch)
            state.train_meter.reset()
            state.valid_meter.reset()

            start = time.perf_counter()
            with self.mode.update(is_train=True), tracker.namespace('train'):
                self.trainer()
            if info.enabled:
                broadcast_buffers(self.model)
            classes = list(self.data.classes)
            train = state.train_meter.result(self.device, info.enabled, len(classes))
            train_seconds = time.perf_counter() - start
            with torch.no_grad(), tracker.namespace('valid'):
                self.validator()
            valid = state.valid_meter.result(self.device, info.enabled, len(classes))

            record = dict(epoch=epoch + 1, train_loss=train.loss,
                          train_accuracy=train.accuracy, valid_loss=valid.loss,
                          valid_accuracy=valid.accuracy,
                          images_per_second=train.count / train_seconds,
                          seconds=time.perf_counter() - start)
            if self.report_top5:
                record['valid_top5'] = valid.top5
            state.valid_details = {'valid_images': valid.count, 'per_class_accuracy':
                                   dict(zip(classes, valid.per_class))}
            state.history.append(record)
            state.epoch = epoch + 1
            self.save_checkpoint()
            if info.is_main:
                tracker.save(epoch + 1, {'loss.train': train.loss,
                                         'accuracy.train': train.accuracy,
                                         'loss.valid': valid.loss,
                                         'accuracy.valid': valid.accuracy,
                                         'images_per_second': record['images_per_second']})
                logger.log(format_epoch(record, self.epochs), is_new_line=True, is_reset=True)

    def save_checkpoint(self):
        # Every process contributes its generators' states; the first one writes.
        rng = runs.rng_state()
        all_rng = [rng]
        if self.dist_info.enabled:
            all_rng = [None] * self.dist_info.world_size
            torch.distributed.all_gather_object(all_rng, rng)
        if not self.dist_info.is_main:
            return
        state = self.run_state
        runs.save_checkpoint(state.run_path, runs.make_checkpoint(
            epoch=state.epoch, model=self.model, optimizer=self.optimizer,
            grad_scaler=self.grad_scaler, history=state.history, rng=all_rng,
            overrides=state.overrides, name=state.name, classes=list(self.data.classes)))

    def load_checkpoint(self, checkpoint: Dict[str, Any]):
        runs.restore_training_state(checkpoint, model=self.model, optimizer=self.optimizer,
                                    grad_scaler=self.grad_scaler, rank=self.dist_info.rank,
                                    world_size=self.dist_info.world_size, seed=self.seed)
        self.run_state.epoch = checkpoint['epoch']
        self.run_state.history = list(checkpoint['history'])


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
# The device comes from `device_name`; in a distributed run each process takes
# the GPU of its local rank.

def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` is CUDA when there is a GPU."""
    if name == 'auto':
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    device = torch.device(name)
    if device.type == 'cuda' and device.index is None:
        device = torch.device('cuda', local_rank)
    return device


@option(TrainerConfigs.device)
def _device(c: TrainerConfigs) -> torch.device:
    return resolve_device(c.device_name, c.dist_info.local_rank)


@option(TrainerConfigs.dist_info)
def _dist_info(c: TrainerConfigs) -> DistInfo:
    # A single process; the launcher sets the real value under `torchrun`
    return DistInfo()


# The speed switches default to the choices of `speed.default_settings` for
# the device, measured with the [benchmark](../benchmarks/train_speed.html).
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


@option(TrainerConfigs.grad_scaler)
def _grad_scaler(c: TrainerConfigs):
    return speed.make_grad_scaler(c.device, c.precision)


@option(TrainerConfigs.run_state)
def _run_state(c: TrainerConfigs) -> RunState:
    return RunState()
