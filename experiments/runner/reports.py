"""
---
title: Reports
summary: >
  What a run leaves for a reader: one line per epoch, summary.json and
  metrics.png at the end, and for `--evaluate` a per-class table and a
  confusion matrix.
nav_order: 7
---

# Reports

labml records every metric in the run's `log.jsonl`; these are the files meant
for a person, or a script, to read after the run: a console line per epoch
([`format_epoch`](#format_epoch)), `summary.json` and `metrics.png`
([`write_summary`](#write_summary)) and, for `--evaluate RUN_UUID`,
`evaluation.json` and `confusion_matrix.png` ([`write_evaluation`](#write_evaluation)).
The numbers come from the [meter](metrics.html). Every file is written
[atomically](../../labml_convmixer/atomic.html), so a reader never sees half of
one.
"""

import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from labml import logger

from experiments.runner.metrics import Result
from labml_convmixer.atomic import atomic_write_bytes, atomic_write_text


def strict_json(value: Any) -> str:
    """
    JSON that every reader accepts: Python writes a non-finite float as a bare
    `NaN` or `Infinity`, which is not JSON; read back, those become `null`.
    """
    loose = json.dumps(value)
    return json.dumps(json.loads(loose, parse_constant=lambda name: None), indent=2)


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
    """Write `fig` in the format of `path`'s suffix, and close it."""
    # An SVG gets no date, so that the same numbers give the same file
    svg = path.suffix == '.svg'
    atomic_write_bytes(path, lambda f: fig.savefig(f, format=path.suffix[1:], dpi=100,
                                                    metadata={'Date': None} if svg else None))
    pyplot().close(fig)


def plot_history(history: List[Dict[str, float]], path: Path):
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
    """`summary.json`, and `metrics.png`: loss and accuracy per epoch."""
    last = history[-1]
    summary = {
        **{key: last[key] for key in ('valid_accuracy', 'valid_top5', 'valid_loss',
                                      'train_accuracy', 'train_loss') if key in last},
        'epochs': len(history),
        'seconds': sum(r['seconds'] for r in history),
        'images_per_second': float(np.mean([r['images_per_second'] for r in history])),
        **facts,
        'run_uuid': run_path.name,
        'history': history,
    }
    atomic_write_text(run_path / 'summary.json', strict_json(summary))
    plot_history(history, run_path / 'metrics.png')
    return summary


# More classes than this make a confusion matrix image nobody can read, and a
# per-class table longer than a screen: the table then lists the worst classes
PLOTTED_CLASSES = 30


def log_pass(result: Result, seconds: float):
    """The line that ends a pass of `--evaluate` or `--eval-only`."""
    logger.log(f"evaluated {result.images}/{result.images} images  "
               f"{result.images / max(seconds, 1e-9):8.1f} img/s  "
               f"top-1 {100 * result.accuracy:6.2f}%")


def log_per_class(evaluation: Result, classes: List[str]):
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


def write_evaluation(run_path: Path, evaluation: Result, classes: List[str],
                     epochs_trained: int, run_uuid: str, **facts: Any) -> Dict[str, Any]:
    """`--evaluate`: the per-class table, `evaluation.json` and `confusion_matrix.png`."""
    result = {'run_uuid': run_uuid, 'epochs_trained': epochs_trained,
              **evaluation.numbers('test', classes), **facts,
              'confusion_matrix': evaluation.confusion.tolist()}
    log_per_class(evaluation, classes)
    atomic_write_text(run_path / 'evaluation.json', strict_json(result))
    if len(classes) <= PLOTTED_CLASSES:
        plot_confusion(evaluation.confusion, classes, run_path / 'confusion_matrix.png')
    return result


def write_evaluation_summary(run_path: Path, evaluation: Result, classes: List[str],
                             **facts: Any) -> Dict[str, Any]:
    """`--eval-only`, the starting weights: the same numbers, in a new run's `summary.json`."""
    summary = {**evaluation.numbers('valid', classes), 'epochs': 0, **facts,
               'classes': classes, 'run_uuid': run_path.name}
    log_per_class(evaluation, classes)
    atomic_write_text(run_path / 'summary.json', strict_json(summary))
    return summary


def plot_confusion(confusion: torch.Tensor, classes: List[str], path: Path):
    plt = pyplot()
    n = len(classes)
    counts = confusion.numpy()
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.6 + 0.6 * n))
    ax.imshow(counts, cmap='Blues')
    ax.set_xticks(range(n), classes, rotation=45, ha='right')
    ax.set_yticks(range(n), classes)
    ax.set(xlabel='predicted class', ylabel='true class', title='Confusion matrix (test set)')
    threshold = counts.max() / 2
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, str(v), ha='center', va='center', fontsize=8,
                color='white' if v > threshold else 'black')
    fig.tight_layout()
    save_figure(fig, path)
