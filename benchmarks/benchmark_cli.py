"""
---
title: Benchmark command line
summary: >
  The speed benchmark's switches: sizes, how long to time, which of our
  speed settings to change, and what to measure and write.
nav_order: 7
---

# Benchmark command line

The [benchmark](train_speed.html) measures our path with the experiment's
[defaults for the device](../experiments/runner/speed.html#default_settings); each
switch here changes one of them, so that a single setting can be checked
against the reference-style loop without editing code. The sizes default to
the CIFAR-10 recipe's ConvMixer-256/8, and the timing to turns of 6 seconds,
30 seconds per path (see [timing in turns](timing.html)).
"""

import argparse
from dataclasses import replace
from pathlib import Path
from typing import List

import torch

from experiments.runner.speed import PRECISIONS, SpeedSettings, default_settings


def parse_args(argv=None):
    """The switches; returns the parser too, for its error messages."""
    p = argparse.ArgumentParser(description="ConvMixer training speed: our path against a loop "
                                            "like the reference train.py, on this machine.")
    p.add_argument('--device', default=None, help="cpu or cuda (default: cuda when present)")
    p.add_argument('--d-model', type=int, default=256, help="h, channels (default 256)")
    p.add_argument('--n-layers', type=int, default=8, help="d, layers (default 8)")
    p.add_argument('--kernel-size', type=int, default=5, help="k (default 5)")
    p.add_argument('--patch-size', type=int, default=2, help="p (default 2)")
    p.add_argument('--batch-size', type=int, default=None, help="default 128 on CPU, 512 on CUDA")
    p.add_argument('--steps', type=int, default=None,
                   help="training steps per call of the model-only runners (default 1 on CPU, 20 on CUDA)")
    p.add_argument('--warmup', type=int, default=None,
                   help="untimed calls before timing, after the first that builds the path (model only)")
    p.add_argument('--turn-seconds', type=float, default=6.0,
                   help="least seconds of one timed turn of one path (default 6)")
    p.add_argument('--seconds', type=float, default=30.0,
                   help="least seconds of timed work per path and measurement (default 30)")
    p.add_argument('--images', type=int, default=None, help="synthetic training images (end to end)")
    p.add_argument('--workers', type=int, default=2,
                   help="data loader workers of the per-image pipelines (default 2)")
    p.add_argument('--lr', type=float, default=0.01)
    p.add_argument('--weight-decay', type=float, default=0.005)
    p.add_argument('--no-compile', action='store_true', help="our path without torch.compile")
    p.add_argument('--no-channels-last', action='store_true', help="our path in NCHW")
    p.add_argument('--channels-last', action='store_true', help="our path in channels_last")
    p.add_argument('--no-fused', action='store_true', help="our path without fused AdamW")
    p.add_argument('--compile', action='store_true', help="our path through torch.compile")
    p.add_argument('--no-keep-memory', action='store_true',
                   help="our path with glibc's default handling of freed memory")
    p.add_argument('--precision', choices=PRECISIONS, default=None,
                   help="bf16-plan: bf16 with the depth-wise convolutions in fp32")
    p.add_argument('--compare', choices=PRECISIONS, action='append', default=[], metavar='PRECISION',
                   help="also time ours in this precision, beside ours (model only, end to end; repeatable)")
    p.add_argument('--cuda-graphs', action='store_true', help="compile with mode='reduce-overhead'")
    p.add_argument('--our-augment', choices=('auto', 'batched', 'torchvision'), default='auto',
                   help="our data pipeline (default auto: the experiment's default for the device)")
    p.add_argument('--skip', choices=('model', 'e2e', 'pipeline', 'profile'), action='append', default=[],
                   help="leave out a measurement (repeatable)")
    p.add_argument('--sweep', action='store_true', help="also A/B test each speed setting (model only)")
    p.add_argument('--parts', action='store_true',
                   help="also time one layer's parts alone in fp32 and bf16 (--sweep does too)")
    p.add_argument('--sweep-kernels', default='5,7,9', help="kernel sizes of the CUDA sweep")
    p.add_argument('--docs-only', action='store_true',
                   help="measure nothing: rebuild the page's table and plot from benchmarks/results/<device>.json")
    p.add_argument('--json', type=Path, default=None, help="write the results as JSON here")
    p.add_argument('--write-docs', action='store_true',
                   help="write benchmarks/results/<device>.json and docs/pages/performance.svg")
    args = p.parse_args(argv)
    return p, args


def device_and_sizes(parser: argparse.ArgumentParser, args) -> torch.device:
    """
    The device to measure on, and the sizes left unset filled in for it: a CPU
    epoch of 512 images takes about 10 s, a GPU one measures a real epoch.
    """
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here; use --device cpu")
    cuda = device.type == 'cuda'
    defaults = dict(batch_size=512 if cuda else 128, steps=20 if cuda else 1, warmup=3 if cuda else 2,
                    images=50_000 if cuda else 512)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ('batch_size', 'steps', 'images', 'd_model', 'n_layers', 'turn_seconds', 'seconds'):
        if getattr(args, key) <= 0:
            parser.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    return device


def our_settings(args, device: torch.device) -> SpeedSettings:
    """The experiment's defaults for the device, with the command line's changes."""
    settings = default_settings(device)
    return replace(
        settings,
        compile=(settings.compile or args.compile) and not args.no_compile,
        channels_last=(settings.channels_last or args.channels_last) and not args.no_channels_last,
        fused=settings.fused and not args.no_fused,
        precision=args.precision or settings.precision,
        compile_mode='reduce-overhead' if args.cuda_graphs else None,
        augment=settings.augment if args.our_augment == 'auto' else args.our_augment,
        keep_memory=settings.keep_memory and not args.no_keep_memory,
    )


def command_line(argv: List[str]) -> str:
    """The command that measured, without where it wrote its JSON copy."""
    kept = [a for i, a in enumerate(argv) if a != '--json' and (i == 0 or argv[i - 1] != '--json')]
    return ' '.join(['python benchmarks/train_speed.py'] + kept)
