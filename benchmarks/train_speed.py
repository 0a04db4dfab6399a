"""
---
title: Training speed benchmark
summary: >
  Our training path against a loop that behaves like the reference
  convmixer-cifar10 train.py, side by side in one process: the model's training
  step alone, and whole epochs through the data pipeline.
nav_order: 2
---

# Training speed benchmark

This script answers one question: *on this machine, how many images per second
does our CIFAR-10 training path process, compared with the reference training
loop?* Both run in the same process, on the same model size, batch size and
device, one after the other.

**The baseline** is the [reference training loop](reference_loop.html): a plain
`nn.Sequential` ConvMixer, per-image PIL augmentation in 2 loader workers, fp16
with a gradient scaler and `DataParallel` on CUDA (fp32 on CPU), the default
AdamW, and `.item()` read-backs after every step. That page also lists what our
path does differently, and why.

**Our path** is the experiment's own code, imported rather than copied, so that
the benchmark measures what the experiment runs: the package's `ConvMixer`
with the speed settings of
[`default_settings`](../experiments/speed.html#default_settings) (compiled,
channels_last on CPU, fused AdamW, bf16 on recent GPUs), prepared and stepped by
the functions of [`experiments/speed.py`](../experiments/speed.html);
statistics accumulated on the device and read once per timed repeat; and the
[data pipeline](../experiments/cifar10_data.html#data-pipelines) that the same
settings pick for the device (`--our-augment` overrides it):

* on a GPU, `batched`: the training set kept on the device as one `uint8`
  tensor, cut into batches by `DeviceBatches` and augmented a batch at a time by
  [`BatchAugment`](../experiments/gpu_augment.html);
* on a CPU, `torchvision`: `ImageDataset` with per-image flip and RandAugment
  on `uint8` tensors in 2 loader workers, which keep up with a CPU's training
  step.

Two measurements for each:

1. **model only** — the training step on a batch already on the device
   (forward, loss, backward, optimizer step);
2. **end to end** — whole epochs over a synthetic CIFAR-shaped data set of
   random `uint8` images (speed does not depend on the pixels), including
   augmentation and loading. Where our pipeline is not `batched`, our model is
   also timed fed by the batched one, as "ours, batched augment".

A third, **data pipelines alone**, runs each side's pipeline without a model,
to show what it costs by itself. After a warm-up (which includes the
compilation of our model, reported separately) the paths are timed [in
turns](timing.html), at least 30 seconds each, and the median images/s is
reported with the ratio ours/baseline per pair of turns. The training step's
arithmetic, the CPU's estimated peak, the share of it each path reaches and a
profile by operator come with them ([Where the time goes](flops.html)). The numbers, the machine and the command line make up
a [report](speed_report.html), which `--write-docs` saves and turns into the
Performance page's tables and plot.

```
python benchmarks/train_speed.py                 # default sizes for the device (about 6 minutes on 2 cores)
python benchmarks/train_speed.py --sweep         # A/B test of each speed setting (about 10 more)
python benchmarks/train_speed.py --write-docs    # also update the Performance page's data and plot
```
"""

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Dict, List

import torch

# The benchmark runs as `python benchmarks/train_speed.py` from anywhere: make the
# project root importable for `labml_convmixer`, `experiments` and `benchmarks`.
_root = str(Path(__file__).resolve().parent.parent)
if _root not in sys.path:
    sys.path.insert(0, _root)

from labml_convmixer.model import convmixer  # noqa: E402
from benchmarks.reference_loop import N_CLASSES, BaselineLoop  # noqa: E402
from benchmarks.flops import count_training_flops, operator_group, peak_gflops, read_cpuinfo  # noqa: E402
from benchmarks.speed_report import (RESULTS, Result, atomic_write, efficiency, machine_info,  # noqa: E402
                                     markdown_table, ratio_summary, write_docs)
from benchmarks.timing import median_and_range, synchronize, time_in_turns  # noqa: E402
from experiments.cifar10_data import (CIFAR10_MEAN, CIFAR10_STD, DeviceBatches, ImageDataset,  # noqa: E402
                                      torchvision_transform)
from experiments.gpu_augment import BatchAugment  # noqa: E402
from experiments.speed import (SpeedSettings, default_settings, train_step,  # noqa: E402
                               make_grad_scaler, make_optimizer, prepare_model, to_device_batch)

# The CIFAR-10 recipe's augmentation, which both pipelines of the experiment apply:
# a horizontal flip and RandAugment with 2 operations at magnitude 12.
RECIPE_AUGMENT = dict(flip=True, num_ops=2, magnitude=12)


# ## Synthetic data

def synthetic_cifar(n_images: int, seed: int = 0):
    """Random `uint8` images `[n, 3, 32, 32]` and labels `[n]`, CIFAR-10's shapes and types."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, N_CLASSES, (n_images,), generator=g)
    return images, labels


# ## Our data pipelines
#
# Built from the experiment's own classes, with the recipe's augmentation. The
# experiment draws its order from a seeded sampler that also splits the data
# between processes; one process's shuffle is all the benchmark needs, and the
# order of the images does not change the speed.

def our_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, workers: int,
                device: torch.device, augment: str):
    """Training batches through the experiment's pipeline `augment`, reshuffled every epoch."""
    sampler = torch.utils.data.RandomSampler(range(len(labels)))
    if augment == 'batched':
        return DeviceBatches(images.to(device), labels.to(device), sampler, batch_size,
                             BatchAugment(CIFAR10_MEAN, CIFAR10_STD, **RECIPE_AUGMENT))
    dataset = ImageDataset(images, labels, torchvision_transform(**RECIPE_AUGMENT))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                       num_workers=workers, pin_memory=device.type == 'cuda')


# ## Our training loop
#
# The baseline is [`BaselineLoop`](reference_loop.html#BaselineLoop).

class OurLoop:
    """The experiment's path with the given speed settings."""

    def __init__(self, args, device: torch.device, settings: SpeedSettings, kernel_size: int = None):
        self.device = device
        self.settings = settings
        model = convmixer(args.d_model, args.n_layers, kernel_size or args.kernel_size, args.patch_size,
                          n_classes=N_CLASSES)
        self.model = prepare_model(model, device, channels_last=settings.channels_last,
                                   compile=settings.compile, compile_mode=settings.compile_mode)
        self.optimizer = make_optimizer(self.model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                                        device=device, fused=settings.fused)
        self.scaler = make_grad_scaler(device, settings.precision)
        self.lr = args.lr
        self.cuda_graphs = settings.compile and settings.compile_mode in ('reduce-overhead', 'max-autotune')
        # Statistics stay on the device; nothing in the step waits for it.
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)

    def step(self, images: torch.Tensor, labels: torch.Tensor):
        if self.cuda_graphs:
            # Tells the CUDA-graph runtime that a new iteration starts, so that it may
            # reuse the memory of the previous one's outputs.
            torch.compiler.cudagraph_mark_step_begin()
        for group in self.optimizer.param_groups:
            group['lr'] = self.lr
        # The experiment's own training step
        loss, output = train_step(self.model, self.optimizer, self.scaler, images, labels,
                                  device=self.device, precision=self.settings.precision)
        self.loss_sum += loss * labels.shape[0]
        self.correct += (output.argmax(1) == labels).sum()

    def epoch(self, batches) -> int:
        """
        One epoch over the batches of one of the experiment's pipelines; each
        batch goes to the device as the experiment sends it (a batch that is
        already there stays where it is).
        """
        self.model.train()
        n = 0
        for images, labels in batches:
            images, labels = to_device_batch(images, labels, self.device,
                                             channels_last=self.settings.channels_last)
            self.step(images, labels)
            n += labels.shape[0]
        # One read-back per epoch, like the experiment's per-epoch log line.
        float(self.loss_sum)
        return n


# ## Measurements

def model_only_runner(loop, args, device: torch.device) -> Callable[[], int]:
    """`args.steps` training steps on one fixed batch already on the device."""
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, 32, 32)
    labels = torch.randint(0, N_CLASSES, (args.batch_size,))
    channels_last = isinstance(loop, OurLoop) and loop.settings.channels_last
    images, labels = to_device_batch(images, labels, device, channels_last=channels_last)

    def run_once():
        for _ in range(args.steps):
            loop.step(images, labels)
        if isinstance(loop, OurLoop):
            float(loop.loss_sum)
        return args.steps * args.batch_size

    run_once.batch = (images, labels)
    return run_once


def end_to_end_runners(args, device: torch.device, settings: SpeedSettings, model: bool = True):
    """
    One epoch of each loop over the same synthetic data set; with `model=False`
    only the data pipelines, to measure what they cost by themselves.
    """
    images, labels = synthetic_cifar(args.images)
    loaders = {'baseline': BaselineLoop.loader(images, labels, args.batch_size, args.workers),
               'ours': our_batches(images, labels, args.batch_size, args.workers, device, settings.augment)}
    if settings.augment != 'batched':
        # The batched pipeline on this device too, for comparison (same model, no workers)
        loaders['ours, batched augment'] = our_batches(images, labels, args.batch_size, args.workers, device,
                                                       'batched')
    if not model:
        return {name: lambda loader=loader: sum(len(labels) for _, labels in loader)
                for name, loader in loaders.items()}
    baseline, ours = BaselineLoop(args, device), OurLoop(args, device, settings)
    return {name: (lambda loader=loader, loop=baseline if name == 'baseline' else ours: loop.epoch(loader))
            for name, loader in loaders.items()}


def measure(kind: str, runners: Dict[str, Callable[[], int]], settings: Dict[str, Dict],
            device: torch.device, args, warmup: int, turn_s: float = None) -> List[Result]:
    """Time the runners in turns (see [timing](timing.html)) and make a `Result` of each."""
    turns = time_in_turns(runners, device, warmup=warmup, turn_s=turn_s or args.turn_seconds,
                          total_s=args.seconds if turn_s is None else 3 * turn_s)
    return [Result(name, kind, median_and_range(turns.rates[name])[0], turns.rates[name],
                   turns.warmup_s[name], settings.get(name, {}), round(turns.timed_s[name], 1))
            for name in runners]


def profile_steps(loops: Dict[str, object], runners: Dict[str, Callable[[], int]], device: torch.device,
                  batch_size: int, rows: int = 12) -> Dict[str, Dict[str, float]]:
    """
    Where the time of a training step goes: two steps of each loop under
    `torch.profiler` (the loops are warm, so compilation is not counted),
    operators sorted by their own time, and the seconds per image by
    [operator group](flops.html#operator_group).
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    sort_by = 'self_cuda_time_total' if device.type == 'cuda' else 'self_cpu_time_total'
    groups = {}
    for name, loop in loops.items():
        with profile(activities=activities) as prof:
            for _ in range(2):
                loop.step(*runners[name].batch)
            synchronize(device)
        averages = prof.key_averages()
        print(f"\nprofile of 2 model-only steps, {name}:")
        print(averages.table(sort_by=sort_by, row_limit=rows))
        by_group: Dict[str, float] = {}
        for event in averages:
            group = operator_group(event.key)
            seconds = (event.self_device_time_total if device.type == 'cuda' else event.self_cpu_time_total)
            by_group[group] = by_group.get(group, 0.0) + seconds / 1e6 / (2 * batch_size)
        groups[name] = {g: round(s, 6) for g, s in sorted(by_group.items(), key=lambda item: -item[1])}
    return groups


def sweep_variants(device: torch.device, base: SpeedSettings, kernel_sizes: List[int]):
    """
    The A/B variants of the model-only step: each differs from the defaults (or
    the plain eager path) in one setting, so each row shows what one knob buys.
    """
    eager = SpeedSettings(channels_last=False, compile=False, fused=False, precision='fp32')
    variants = [
        ('eager NCHW fp32', eager),
        ('eager channels_last', replace(eager, channels_last=True)),
        ('eager channels_last bf16', replace(eager, channels_last=True, precision='bf16')),
        ('compiled NCHW', replace(eager, compile=True)),
        ('compiled channels_last', replace(eager, compile=True, channels_last=True)),
        ('compiled channels_last fused', replace(eager, compile=True, channels_last=True, fused=True)),
        ('compiled channels_last bf16', replace(eager, compile=True, channels_last=True, fused=True,
                                                precision='bf16')),
        ('compiled max-autotune', replace(eager, compile=True, channels_last=True, fused=True,
                                          compile_mode='max-autotune-no-cudagraphs')),
    ]
    if device.type == 'cuda':
        variants = []
        for k in kernel_sizes:
            for precision in ('bf16', 'fp16'):
                for channels_last in (False, True):
                    variants.append((f'k{k} {precision} {"NHWC" if channels_last else "NCHW"} compiled',
                                     replace(base, precision=precision, channels_last=channels_last), k))
            variants.append((f'k{k} {base.precision} eager', replace(base, compile=False), k))
            variants.append((f'k{k} {base.precision} CUDA graphs',
                             replace(base, compile_mode='reduce-overhead'), k))
            variants.append((f'k{k} {base.precision} not fused', replace(base, fused=False), k))
        return variants
    return [(name, s, None) for name, s in variants]


def run_sweep(args, device: torch.device, settings: SpeedSettings) -> List[Result]:
    """Every variant of `sweep_variants`, timed in turns with the reference-style loop."""
    kernels = [int(k) for k in args.sweep_kernels.split(',')]
    torch.manual_seed(0)
    loops = [BaselineLoop(args, device)]
    runners = {'baseline loop': model_only_runner(loops[0], args, device)}
    runners['baseline loop']()
    variant_settings = {'baseline loop': {'first_call_s': 0.0}}
    for name, variant, kernel in sweep_variants(device, settings, kernels):
        torch.manual_seed(0)
        loop = OurLoop(args, device, variant, kernel_size=kernel)
        run = model_only_runner(loop, args, device)
        try:
            # Build (and compile) now, so that a setting this machine cannot run is
            # reported and left out instead of ending the sweep.
            start = time.perf_counter()
            run()
            synchronize(device)
            first_call_s = time.perf_counter() - start
        except Exception as e:
            print(f"  sweep  {name:36s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            continue
        loops.append(loop)
        runners[name] = run
        variant_settings[name] = dict(asdict(variant), kernel_size=kernel or args.kernel_size,
                                      first_call_s=round(first_call_s, 1))
    results = measure('sweep', runners, variant_settings, device, args, args.warmup)
    for r in results:
        r.warmup_s += r.settings['first_call_s']
    return results


def parse_args(argv=None):
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
    p.add_argument('--warmup', type=int, default=None, help="untimed calls before timing (model only)")
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
    p.add_argument('--precision', choices=('fp32', 'bf16', 'fp16'), default=None)
    p.add_argument('--cuda-graphs', action='store_true', help="compile with mode='reduce-overhead'")
    p.add_argument('--our-augment', choices=('auto', 'batched', 'torchvision'), default='auto',
                   help="our data pipeline (default auto: the experiment's default for the device)")
    p.add_argument('--skip', choices=('model', 'e2e', 'pipeline', 'profile'), action='append', default=[],
                   help="leave out a measurement (repeatable)")
    p.add_argument('--sweep', action='store_true', help="also A/B test each speed setting (model only)")
    p.add_argument('--sweep-kernels', default='5,7,9', help="kernel sizes of the CUDA sweep")
    p.add_argument('--docs-only', action='store_true',
                   help="measure nothing: rebuild the page's table and plot from benchmarks/results/<device>.json")
    p.add_argument('--json', type=Path, default=None, help="write the results as JSON here")
    p.add_argument('--write-docs', action='store_true',
                   help="write benchmarks/results/<device>.json and docs/pages/performance.svg")
    args = p.parse_args(argv)
    return p, args


def our_settings(args, device: torch.device) -> SpeedSettings:
    """The experiment's defaults for the device, with the command line's changes."""
    settings = default_settings(device)
    return replace(
        settings,
        compile=settings.compile and not args.no_compile,
        channels_last=(settings.channels_last or args.channels_last) and not args.no_channels_last,
        fused=settings.fused and not args.no_fused,
        precision=args.precision or settings.precision,
        compile_mode='reduce-overhead' if args.cuda_graphs else None,
        augment=settings.augment if args.our_augment == 'auto' else args.our_augment,
    )


def command_line(argv: List[str]) -> str:
    """The command that measured, without where it wrote its JSON copy."""
    kept = [a for i, a in enumerate(argv) if a != '--json' and (i == 0 or argv[i - 1] != '--json')]
    return ' '.join(['python benchmarks/train_speed.py'] + kept)


def show(r: Result):
    low, high = min(r.repeats), max(r.repeats)
    print(f"  {r.kind:8s} {r.name:36s} {r.images_per_s:9.1f} images/s  (turns {low:.1f} to {high:.1f}, "
          f"{len(r.repeats)} turns, {r.timed_s:.0f} s timed; warm-up {r.warmup_s:.1f} s)", flush=True)


def main(argv=None):
    parser, args = parse_args(argv)
    # Every loop compiles its own model instance, and `torch.compile` keeps one entry
    # per instance for the same code; its default limit of 8 entries would silently
    # send later models back to eager mode in a sweep.
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here; use --device cpu")
    cuda = device.type == 'cuda'
    # Sizes per device: a CPU epoch of 512 images takes about 10 s, a GPU one measures a real epoch.
    defaults = dict(batch_size=512 if cuda else 128, steps=20 if cuda else 1, warmup=3 if cuda else 2,
                    images=50_000 if cuda else 512)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ('batch_size', 'steps', 'images', 'd_model', 'n_layers', 'turn_seconds', 'seconds'):
        if getattr(args, key) <= 0:
            parser.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    settings = our_settings(args, device)
    if args.docs_only:
        source = RESULTS / f'{device.type}.json'
        if not source.exists():
            parser.error(f"--docs-only: {source} does not exist; run with --write-docs first")
        write_docs(json.loads(source.read_text()), device.type)
        return
    machine = machine_info(device)
    print(f"machine: {json.dumps(machine)}")
    print(f"model: ConvMixer-{args.d_model}/{args.n_layers} k{args.kernel_size} p{args.patch_size}, "
          f"batch {args.batch_size}; our settings: {asdict(settings)}")
    flops = count_training_flops(convmixer(args.d_model, args.n_layers, args.kernel_size, args.patch_size,
                                           n_classes=N_CLASSES))
    flops_per_image = sum(flops.values())
    peak = None if cuda else peak_gflops(machine['torch_threads'], read_cpuinfo())
    print(f"training step: {flops_per_image / 1e9:.3f} GFLOP an image "
          f"({', '.join(f'{k} {100 * v / flops_per_image:.1f} %' for k, v in flops.items())}); "
          f"estimated peak: {'unknown' if peak is None else f'{peak.fp32_gflops:.0f} GFLOP/s fp32, '}"
          f"{'' if peak is None else f'{peak.bf16_gflops:.0f} bf16 ({peak.isa})'}")
    results: List[Result] = []
    profile = {}
    timing = f"turns of at least {args.turn_seconds:g} s, at least {args.seconds:g} s per path, in turns"
    if 'model' not in args.skip:
        print(f"model only: {args.warmup} warm-up calls, then {timing}")
        torch.manual_seed(0)
        loops = {'baseline': BaselineLoop(args, device), 'ours': OurLoop(args, device, settings)}
        runners = {name: model_only_runner(loop, args, device) for name, loop in loops.items()}
        for r in measure('model', runners, {'baseline': {}, 'ours': asdict(settings)}, device, args,
                         args.warmup):
            results.append(r)
            show(r)
        if 'profile' not in args.skip:
            profile = profile_steps(loops, runners, device, args.batch_size)
        del loops, runners
    if 'pipeline' not in args.skip:
        print(f"data pipelines alone: {args.images} synthetic images an epoch, turns of at least 2 s")
        runners = end_to_end_runners(args, device, settings, model=False)
        for r in measure('pipeline', runners, {}, device, args, 1, turn_s=2.0):
            results.append(r)
            show(r)
    if 'e2e' not in args.skip:
        print(f"end to end: {args.images} synthetic images an epoch, 1 warm-up epoch, then {timing}; "
              f"our pipeline: {settings.augment}")
        runners = end_to_end_runners(args, device, settings)
        run_settings = {'baseline': {'workers': args.workers}, 'ours': asdict(settings),
                        'ours, batched augment': asdict(replace(settings, augment='batched'))}
        for r in measure('e2e', runners, run_settings, device, args, 1):
            results.append(r)
            show(r)
        del runners
    sweep: List[Result] = []
    if args.sweep:
        print(f"sweep (model only, every variant in turns): {timing}")
        for r in run_sweep(args, device, settings):
            sweep.append(r)
            show(r)

    ratios = ratio_summary(results)
    print("\nratios ours / baseline, per pair of turns (median, range):")
    for name, r in ratios.items():
        print(f"  {name:32s} {r['median']:.2f}x  ({r['low']:.2f} to {r['high']:.2f})")
    rates = efficiency(results + sweep, flops_per_image, peak)
    print("\nachieved GFLOP/s (model only), and % of the estimated peak:")
    for name, r in rates.items():
        print(f"  {name:40s} {r['gflops']:7.1f}  {r['percent_of_peak'] or '-'} %")
    print()
    print(markdown_table(results + sweep))

    report = {'machine': machine, 'args': {k: (str(v) if isinstance(v, Path) else v)
                                           for k, v in vars(args).items()},
              'command': command_line(sys.argv[1:] if argv is None else argv),
              'results': [asdict(r) for r in results + sweep], 'ratios': ratios,
              'flops_per_image': flops, 'peak': None if peak is None else dict(asdict(peak), fp32_gflops=round(
                  peak.fp32_gflops, 1), bf16_gflops=round(peak.bf16_gflops, 1)),
              'efficiency': rates, 'profile': profile}
    data = (json.dumps(report, indent=2) + '\n').encode()
    if args.json:
        atomic_write(args.json, data)
    if args.write_docs:
        write_docs(report, device.type)


if __name__ == '__main__':
    main()
