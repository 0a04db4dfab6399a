"""
---
title: Reports
summary: >
  What a run leaves for a reader: one line per epoch, summary.json and
  metrics.png at the end, and for `--evaluate` a per-class table and a
  confusion matrix.
nav_order: 13
---

# Reports

labml records every metric in the run's `log.jsonl`; these are the files meant
for a person, or a script, to read after the run:

* a console line per epoch ([`format_epoch`](#format_epoch));
* `summary.json` with the final numbers, the settings that were changed and
  the whole history, and `metrics.png`, loss and accuracy per epoch
  ([`write_summary`](#write_summary));
* for `--evaluate RUN_UUID`: the accuracy of each class, `evaluation.json`,
  and `confusion_matrix.png`, the count of test images of each true class
  (rows) given each predicted class (columns) ([`evaluate`](#evaluate)); an
  experiment that evaluates its starting weights without training
  (`--eval-only`) writes the same numbers to the `summary.json` of a new run.

A pass over the test data shows its progress: the images per second and the
top-1 accuracy so far, redrawn on a terminal, and a line every few thousand
images in a log. Every file is written atomically, so a reader never sees half
of one.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labml import logger

from experiments import speed
from experiments.runs import atomic_write_bytes, atomic_write_text


def format_epoch(r: Dict[str, float], epochs: int) -> str:
    width = len(str(epochs))
    return (f"epoch {r['epoch']:{width}d}/{epochs}  "
            f"train loss {r['train_loss']:.4f} acc {100 * r['train_accuracy']:6.2f}%  "
            f"test loss {r['valid_loss']:.4f} acc {100 * r['valid_accuracy']:6.2f}%  "
            + (f"top-5 {100 * r['valid_top5']:6.2f}%  " if 'valid_top5' in r else '')
            + f"{r['images_per_second']:8.1f} img/s  {r['seconds']:7.1f} s")


def pyplot():
    """matplotlib's `pyplot`, drawing to files: the Agg back end needs no display."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    # Fixed ids inside an SVG, so that the same figure gives the same file
    plt.rcParams['svg.hashsalt'] = 'labml_convmixer'
    return plt


def save_figure(fig, path: Path):
    """
    Write `fig` atomically, in the format of `path`'s suffix, and close it. An
    SVG gets no date, so that the same numbers give the same file.
    """
    svg = path.suffix == '.svg'
    atomic_write_bytes(path, lambda f: fig.savefig(f, format=path.suffix[1:], dpi=100,
                                                    metadata={'Date': None} if svg else None))
    pyplot().close(fig)


def plot_history(history: List[Dict[str, float]], path: Path):
    """Loss and accuracy per epoch, for training and test data, as a PNG."""
    from matplotlib.ticker import MaxNLocator
    plt = pyplot()
    epochs = [r['epoch'] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (('train', 'train'), ('valid', 'test')):
        ax_loss.plot(epochs, [r[f'{key}_loss'] for r in history], marker='o', label=label)
        ax_acc.plot(epochs, [100 * r[f'{key}_accuracy'] for r in history], marker='o',
                    label=label)
    ax_loss.set(xlabel='epoch', ylabel='cross-entropy loss', title='Loss')
    ax_acc.set(xlabel='epoch', ylabel='accuracy (%)', title='Accuracy')
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def write_summary(run_path: Path, history: List[Dict[str, float]], **facts: Any) -> Dict[str, Any]:
    """
    `summary.json`: the last epoch's numbers, totals over the run, the `facts`
    the experiment adds (changed settings, device, classes, ...) and the history.
    """
    last = history[-1]
    summary = {
        'valid_accuracy': last['valid_accuracy'],
        **({'valid_top5': last['valid_top5']} if 'valid_top5' in last else {}),
        'valid_loss': last['valid_loss'],
        'train_accuracy': last['train_accuracy'],
        'train_loss': last['train_loss'],
        'epochs': len(history),
        'seconds': sum(r['seconds'] for r in history),
        'images_per_second': float(np.mean([r['images_per_second'] for r in history])),
        **facts,
        'run_uuid': run_path.name,
        'history': history,
    }
    atomic_write_text(run_path / 'summary.json', json.dumps(summary, indent=2))
    plot_history(history, run_path / 'metrics.png')
    return summary


# ## Evaluation
#
# One pass over the test data gives the confusion matrix, the count of images
# of each true class (rows) given each predicted class (columns), from which
# top-1 accuracy, per class and overall, follows; top-5 hits and the loss are
# summed alongside.

# A progress line every this many images when the output is not a terminal
PROGRESS_EVERY = 4096
# More classes than this make a confusion matrix image nobody can read, and a
# per-class table longer than a screen: the table then lists the worst classes
PLOTTED_CLASSES = 30


@dataclasses.dataclass
class Evaluation:
    confusion: torch.Tensor  # `[n_classes, n_classes]`, on the CPU
    loss_sum: float
    top5_correct: int

    @property
    def images(self) -> int:
        return int(self.confusion.sum())

    def numbers(self, prefix: str, classes: List[str]) -> Dict[str, Any]:
        """Top-1, top-5, loss, images, per-class accuracy: `{prefix}_accuracy`, ..."""
        n = max(self.images, 1)
        counts = self.confusion.sum(dim=1).clamp(min=1)
        per_class = {name: self.confusion[i, i].item() / counts[i].item()
                     for i, name in enumerate(classes)}
        return {f'{prefix}_accuracy': self.confusion.diag().sum().item() / n,
                f'{prefix}_top5': self.top5_correct / n,
                f'{prefix}_loss': self.loss_sum / n,
                f'{prefix}_images': self.images, 'per_class_accuracy': per_class}


class _Progress:
    """Images per second and the running top-1 accuracy of a pass."""

    def __init__(self, total: int):
        self.total, self.start = total, time.perf_counter()
        self.terminal = sys.stdout.isatty()
        self.next_line, self.last_drawn = PROGRESS_EVERY, 0.0

    def update(self, seen: int, correct: torch.Tensor):
        now, done = time.perf_counter(), seen >= self.total
        # Reading `correct` waits for the device: only when a line is due
        if not (done or (now - self.last_drawn > 0.5 if self.terminal
                         else seen >= self.next_line)):
            return
        self.last_drawn = now
        while self.next_line <= seen:
            self.next_line += PROGRESS_EVERY
        width = len(str(self.total))
        logger.log(f"evaluated {seen:{width}d}/{self.total} images  "
                   f"{seen / max(now - self.start, 1e-9):8.1f} img/s  "
                   f"top-1 {100 * correct.item() / max(seen, 1):6.2f}%",
                   is_new_line=done or not self.terminal)


def evaluate(model: nn.Module, loader, classes: List[str], *, device: torch.device,
             precision: str, channels_last: bool,
             distributed: bool = False) -> Evaluation:
    """
    The model on every batch of `loader`. In a distributed run each process
    evaluates its share and the counts are added up.
    """
    model.eval()
    n = len(classes)
    confusion = torch.zeros(n * n, dtype=torch.long, device=device)
    sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, top-5 hits
    sampler = getattr(loader, 'sampler', None)
    progress = _Progress(len(sampler) if sampler is not None else len(loader.dataset))
    seen = 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = speed.to_device_batch(images, labels, device,
                                                   channels_last=channels_last)
            with speed.autocast(device, precision):
                logits = model(images).float()
            top = logits.topk(min(5, n), dim=-1).indices
            loss = F.cross_entropy(logits, labels, reduction='sum')
            sums += torch.stack([loss.double(),
                                 (top == labels[:, None]).any(dim=-1).sum().double()])
            predicted = logits.argmax(dim=-1)
            confusion += torch.bincount(labels * n + predicted, minlength=n * n)
            seen += len(labels)
            progress.update(seen, confusion.view(n, n).diag().sum())
    if distributed:
        torch.distributed.all_reduce(confusion)
        torch.distributed.all_reduce(sums)
    loss_sum, top5 = sums.tolist()
    return Evaluation(confusion.view(n, n).cpu(), loss_sum, int(top5))


def log_per_class(evaluation: Evaluation, classes: List[str]):
    """The per-class table; with many classes only the worst ones."""
    accuracy = evaluation.numbers('test', classes)['per_class_accuracy']
    shown = list(range(len(classes)))
    if len(classes) > PLOTTED_CLASSES:
        shown = sorted(shown, key=lambda i: accuracy[classes[i]])[:10]
        logger.log(f"the {len(shown)} classes with the lowest accuracy:")
    logger.log(f"{'class':<12} {'images':>7} {'accuracy':>9}")
    for i in shown:
        name = classes[i]
        logger.log(f"{name:<12} {int(evaluation.confusion[i].sum()):7d} "
                   f"{100 * accuracy[name]:8.2f}%")


def write_evaluation(run_path: Path, evaluation: Evaluation, classes: List[str],
                     epochs_trained: int, **facts: Any) -> Dict[str, Any]:
    """
    `--evaluate`: print the per-class table; write `evaluation.json` and
    `confusion_matrix.png` (for a readable number of classes).
    """
    result = {'run_uuid': run_path.name, 'epochs_trained': epochs_trained,
              **evaluation.numbers('test', classes), **facts,
              'confusion_matrix': evaluation.confusion.tolist()}
    log_per_class(evaluation, classes)
    atomic_write_text(run_path / 'evaluation.json', json.dumps(result, indent=2))
    if len(classes) <= PLOTTED_CLASSES:
        plot_confusion(evaluation.confusion, classes, run_path / 'confusion_matrix.png')
    return result


def write_evaluation_summary(run_path: Path, evaluation: Evaluation, classes: List[str],
                             **facts: Any) -> Dict[str, Any]:
    """
    `--eval-only`: the numbers of the one pass, as `valid_accuracy`,
    `valid_top5`, ..., in the new run's `summary.json`.
    """
    summary = {**evaluation.numbers('valid', classes), 'epochs': 0, **facts,
               'classes': classes, 'run_uuid': run_path.name}
    log_per_class(evaluation, classes)
    atomic_write_text(run_path / 'summary.json', json.dumps(summary, indent=2))
    return summary


def plot_confusion(confusion: torch.Tensor, classes: List[str], path: Path):
    plt = pyplot()
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
    save_figure(fig, path)
