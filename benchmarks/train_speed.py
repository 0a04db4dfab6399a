"""
---
title: Training speed benchmark
summary: >
  Our training path against a loop that behaves like the reference
  convmixer-cifar10 train.py, each in a process of its own, timed in turns: the
  model's training step alone, and whole epochs through the data pipeline.
nav_order: 2
---

# Training speed benchmark

Install first, from the root of a clone: `python3 -m pip install -e ".[experiment]"`.

This script answers one question: *on this machine, how many images per second
does our CIFAR-10 training path process, compared with the reference training
loop?* Both run on the same model size, batch size and device, each in [a
process of its own](path_process.html), taking turns.

**The baseline** is the [reference training loop](reference_loop.html): a plain
`nn.Sequential` ConvMixer, per-image PIL augmentation in 2 loader workers, fp16
with a gradient scaler and `DataParallel` on CUDA (fp32 on CPU), the default
AdamW, and `.item()` read-backs after every step. That page also lists what our
path does differently, and why.

**Our path** is the experiment's own code, imported rather than copied, so that
the benchmark measures what the experiment runs: the package's `ConvMixer`
with the speed settings of
[`default_settings`](../experiments/runner/speed.html#default_settings) (on a CPU
eager, channels_last, fused AdamW, freed memory kept; on a GPU compiled, fused
AdamW, bf16 where the GPU has it), prepared and stepped by the functions of
[`experiments/runner/speed.py`](../experiments/runner/speed.html); statistics
accumulated on the device and read once per timed repeat; and the
[data pipeline](../experiments/datasets/cifar10_data.html#data-pipelines) that the same
settings pick for the device (`--our-augment` overrides it):

* `batched`, on a GPU and on a CPU: the training set kept on the device as
  one `uint8` tensor, cut into batches by `DeviceBatches` and augmented a batch
  at a time by [`BatchAugment`](../experiments/datasets/gpu_augment.html), in the
  training process between steps;
* `torchvision` (`--our-augment torchvision`): `ImageDataset` with per-image
  flip and RandAugment on `uint8` tensors in 2 loader workers, which on a CPU
  compete with the training step for its cores (see the Performance page).

Two measurements for each:

1. **model only** — the training step on a batch already on the device
   (forward, loss, backward, optimizer step);
2. **end to end** — whole epochs over a synthetic CIFAR-shaped data set of
   random `uint8` images (speed does not depend on the pixels), including
   augmentation and loading. On a CPU our model is also timed fed by the other
   pipeline ("ours, per-image augment"; "ours, batched augment" when ours is per-image).

A third, **data pipelines alone**, runs each side's pipeline without a model,
to show what it costs by itself. After a warm-up (which includes the
compilation of a compiled model, reported separately) the paths are timed [in
turns](timing.html), at least 30 seconds each, and the median images/s is
reported with the ratio ours/baseline per pair of turns. The training step's
arithmetic, the CPU's estimated peak, the share of it each path reaches and a
profile by operator come with them ([Where the time goes](flops.html)). The
numbers, the machine and the command line make up a [report](speed_report.html),
which `--write-docs` saves and turns into the Performance page's tables and plot.

```
python benchmarks/train_speed.py                 # default sizes for the device (about 9 minutes on 2 cores)
python benchmarks/train_speed.py --sweep         # A/B test of each speed setting (about 30 more)
python benchmarks/train_speed.py --parts         # a CPU layer's parts alone, fp32 against bf16
python benchmarks/train_speed.py --compare fp32  # ours in fp32 too, beside the device's default
python benchmarks/train_speed.py --write-docs    # also update the Performance page's data and plot
```
"""

import json
import sys
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional

import torch

# The benchmark runs as `python benchmarks/train_speed.py` from anywhere: make the
# project root importable for `labml_convmixer`, `experiments` and `benchmarks`.
_root = str(Path(__file__).resolve().parent.parent)
if _root not in sys.path:
    sys.path.insert(0, _root)

from labml_convmixer import convmixer  # noqa: E402
from benchmarks.reference_loop import N_CLASSES, BaselineLoop  # noqa: E402
from benchmarks.benchmark_cli import command_line, device_and_sizes, our_settings, parse_args  # noqa: E402
from benchmarks.path_process import PathProcess  # noqa: E402
from benchmarks.precision_parts import measure_parts, parts_table  # noqa: E402
from benchmarks.flops import count_training_flops, operator_group, peak_gflops, read_cpuinfo  # noqa: E402
from benchmarks.speed_report import (RESULTS, Result, atomic_write, efficiency, machine_info,  # noqa: E402
                                     markdown_table, ratio_summary, show, write_docs)
from benchmarks.timing import median_and_range, synchronize, time_in_turns  # noqa: E402
from experiments.datasets.cifar10_data import (CIFAR10_MEAN, CIFAR10_STD, DeviceBatches, ImageDataset,  # noqa: E402
                                      torchvision_transform)
from experiments.datasets.gpu_augment import BatchAugment  # noqa: E402
from experiments.runner.speed import (SpeedSettings, keep_freed_memory, train_step,  # noqa: E402
                               make_grad_scaler, make_optimizer, prepare_model, to_device_batch)

# The CIFAR-10 recipe's augmentation, which both pipelines of the experiment apply:
# a horizontal flip and RandAugment with 2 operations at magnitude 12.
RECIPE_AUGMENT = dict(flip=True, num_ops=2, magnitude=12)


# ## Synthetic data and our data pipelines
#
# The pipelines are built from the experiment's own classes, with the recipe's
# augmentation. The experiment draws its order from a seeded sampler that also
# splits the data between processes; one process's shuffle is all the
# benchmark needs, and the order of the images does not change the speed.

def synthetic_cifar(n_images: int, seed: int = 0):
    """Random `uint8` images `[n, 3, 32, 32]` and labels `[n]`, CIFAR-10's shapes and types."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n_images, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, N_CLASSES, (n_images,), generator=g)
    return images, labels


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
                                   compile=settings.compile, compile_mode=settings.compile_mode,
                                   precision=settings.precision)
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


# ## One path, in a process of its own
#
# Each timed path is built by `PathRunner` inside [a process of its
# own](path_process.html) from a `PathSpec`, which says which loop, which
# settings and which of the three measurements. The process keeps its own
# heap: [keeping freed memory](../experiments/runner/speed.html#keep_freed_memory) in
# ours leaves the reference-style loop's untouched, as it would be in a script
# of its own.

@dataclass
class PathSpec:
    name: str
    kind: str  # 'model': steps on one batch; 'e2e': epochs through a pipeline; 'pipeline': the pipeline alone
    settings: Optional[SpeedSettings] = None  # our speed settings; None: the reference-style loop
    augment: str = ''  # our data pipeline, 'torchvision' or 'batched'
    kernel_size: Optional[int] = None  # k, when it differs from the command line's
    keep_memory: Optional[bool] = None  # None: the settings' own (off for the reference-style loop)
    threads: Optional[int] = None  # PyTorch's compute threads; None: its default, one a core

    def report_settings(self, args) -> Dict:
        """The settings the report records for this path."""
        if self.settings is None:
            found = {'workers': args.workers} if self.kind != 'model' else {}
        else:
            found = asdict(replace(self.settings, augment=self.augment or self.settings.augment))
        extra = dict(keep_memory=self.keep_memory, threads=self.threads, kernel_size=self.kernel_size)
        return {**found, **{k: v for k, v in extra.items() if v is not None}}


def fixed_batch(args, device: torch.device, channels_last: bool):
    """One random batch, on the device, in the path's memory format."""
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, 32, 32)
    labels = torch.randint(0, N_CLASSES, (args.batch_size,))
    return to_device_batch(images, labels, device, channels_last=channels_last)


class PathRunner:
    """
    The path's side, in its process: the loop and its data, and one unit of
    work per `run()`: `args.steps` training steps on a fixed batch (model
    only), one epoch through the pipeline (end to end), or one epoch of the
    pipeline without a model.

    A path that keeps freed memory gives it back to the kernel after each of
    its turns and takes it again before the next with one untimed step, as the
    first steps of a training run do once. So a dozen sweep variants waiting
    for their turns do not hold a dozen peaks of memory at once.
    """

    def __init__(self, spec: PathSpec, args, device: torch.device):
        self.spec, self.args, self.device = spec, args, device
        ours = spec.settings is not None
        self.keep = spec.keep_memory if spec.keep_memory is not None else ours and spec.settings.keep_memory
        if self.keep:
            keep_freed_memory()
        if spec.threads:
            torch.set_num_threads(spec.threads)
        torch.manual_seed(0)
        self.loop = None
        if spec.kind != 'pipeline':
            self.loop = (OurLoop(args, device, spec.settings, kernel_size=spec.kernel_size) if ours
                         else BaselineLoop(args, device))
        channels_last = ours and spec.settings.channels_last
        self.batch = None if self.loop is None else fixed_batch(args, device, channels_last)
        if spec.kind != 'model':
            images, labels = synthetic_cifar(args.images)
            self.loader = (our_batches(images, labels, args.batch_size, args.workers, device,
                                       spec.augment or spec.settings.augment) if ours
                           else BaselineLoop.loader(images, labels, args.batch_size, args.workers))

    def run(self) -> int:
        if self.spec.kind == 'model':
            for _ in range(self.args.steps):
                self.loop.step(*self.batch)
            if isinstance(self.loop, OurLoop):
                float(self.loop.loss_sum)
            n = self.args.steps * self.args.batch_size
        elif self.spec.kind == 'e2e':
            n = self.loop.epoch(self.loader)
        else:
            n = sum(len(labels) for _, labels in self.loader)
        synchronize(self.device)
        return n

    def before_turn(self):
        if self.keep:
            keep_freed_memory(True)
            if self.loop is not None:
                self.loop.step(*self.batch)
                synchronize(self.device)

    def after_turn(self):
        if self.keep:
            keep_freed_memory(False)

    def profile(self, rows: int = 12) -> Dict[str, float]:
        """
        Where the time of a training step goes: two steps under `torch.profiler`
        (the loop is warm, so compilation is not counted), operators sorted by
        their own time, and the seconds per image by
        [operator group](flops.html#operator_group).
        """
        from torch.profiler import ProfilerActivity, profile
        cuda = self.device.type == 'cuda'
        self.before_turn()
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for _ in range(2):
                self.loop.step(*self.batch)
            synchronize(self.device)
        self.after_turn()
        averages = prof.key_averages()
        print(f"\nprofile of 2 model-only steps, {self.spec.name}:")
        print(averages.table(sort_by='self_cuda_time_total' if cuda else 'self_cpu_time_total', row_limit=rows),
              flush=True)
        by_group: Dict[str, float] = {}
        for event in averages:
            seconds = event.self_device_time_total if cuda else event.self_cpu_time_total
            group = operator_group(event.key)
            by_group[group] = by_group.get(group, 0.0) + seconds / 1e6 / (2 * self.args.batch_size)
        return {g: round(t, 6) for g, t in sorted(by_group.items(), key=lambda item: -item[1])}


# ## Measurements

def start_paths(specs: List[PathSpec], args, device: torch.device, skip_failed: bool = False):
    """
    A process for each path, built and called once (compiling, where the
    settings compile). With `skip_failed` a path this machine cannot run is
    reported and left out instead of ending the benchmark.
    """
    paths = {}
    for spec in specs:
        try:
            paths[spec.name] = PathProcess(spec.name, PathRunner, spec, args, device)
        except RuntimeError as e:
            if not skip_failed:
                for path in paths.values():
                    path.close()
                raise
            print(f"  {spec.kind:8s} {spec.name:36s} failed: {str(e)[:160]}", flush=True)
    return paths


def measure(kind: str, specs: List[PathSpec], args, device: torch.device, warmup: int,
            turn_s: float = None, profile: bool = False, skip_failed: bool = False):
    """
    Time the paths in turns (see [timing](timing.html)); a `Result` for each,
    and with `profile` the profile of each path's step by operator group.
    """
    paths = start_paths(specs, args, device, skip_failed)
    try:
        # The clock is read here, in the parent; each path waits for its device before it answers.
        turns = time_in_turns(paths, torch.device('cpu'), warmup=warmup, turn_s=turn_s or args.turn_seconds,
                              total_s=args.seconds if turn_s is None else 3 * turn_s,
                              before_turn={name: partial(p.call, 'before_turn') for name, p in paths.items()},
                              after_turn={name: partial(p.call, 'after_turn') for name, p in paths.items()})
        results = [Result(spec.name, kind, median_and_range(turns.rates[spec.name])[0], turns.rates[spec.name],
                          turns.warmup_s[spec.name] + paths[spec.name].first_call_s,
                          spec.report_settings(args), round(turns.timed_s[spec.name], 1))
                   for spec in specs if spec.name in paths]
        profiles = {name: p.call('profile') for name, p in paths.items()} if profile else {}
    finally:
        for path in paths.values():
            path.close()
    return results, profiles


def sweep_variants(device: torch.device, base: SpeedSettings, kernel_sizes: List[int]):
    """
    The A/B variants of the model-only step: each differs from the defaults (or
    the plain eager path) in one setting, so each row shows what one knob buys.
    """
    eager = SpeedSettings(channels_last=False, compile=False, fused=False, precision='fp32')
    kept = replace(eager, channels_last=True, fused=True, keep_memory=True)
    variants = [
        ('eager NCHW fp32', eager),
        ('eager channels_last', replace(eager, channels_last=True)),
        ('eager channels_last fused', replace(eager, channels_last=True, fused=True)),
        ('eager channels_last fused, kept memory', kept),
        ('eager NCHW fused, kept memory', replace(kept, channels_last=False)),
        ('eager bf16, kept memory', replace(kept, precision='bf16')),
        ('eager bf16 plan, kept memory', replace(kept, precision='bf16-plan')),
        ('compiled channels_last fused', replace(kept, compile=True, keep_memory=False)),
        ('compiled, kept memory', replace(kept, compile=True)),
        ('compiled max-autotune, kept memory', replace(kept, compile=True,
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
    specs = [PathSpec('baseline loop', 'model')]
    if device.type == 'cpu':
        # What keeping freed memory alone does for the reference-style loop
        specs.append(PathSpec('baseline loop, kept memory', 'model', keep_memory=True))
    specs += [PathSpec(name, 'model', variant, kernel_size=kernel)
              for name, variant, kernel in sweep_variants(device, settings, kernels)]
    threads = torch.get_num_threads() - 1
    if device.type == 'cpu' and threads > 0:
        # One compute thread fewer leaves a core to the rest of the process
        specs.append(PathSpec(f'defaults, {threads} thread{"s" if threads > 1 else ""}', 'model', settings,
                              threads=threads))
    results, _ = measure('sweep', specs, args, device, args.warmup, skip_failed=True)
    return results


def main(argv=None):
    parser, args = parse_args(argv)
    device = device_and_sizes(parser, args)
    cuda = device.type == 'cuda'
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
    ours_e2e = [PathSpec('ours', 'e2e', settings)]
    # The other pipeline on this device too (same model): batched, or on a CPU the per-image one it replaced
    if settings.augment != 'batched':
        ours_e2e.append(PathSpec('ours, batched augment', 'e2e', settings, augment='batched'))
    elif device.type == 'cpu':
        ours_e2e.append(PathSpec('ours, per-image augment', 'e2e', settings, augment='torchvision'))
    # `--compare P`: ours in precision P as well, in the same turns, model only and end to end
    others = [PathSpec(f'ours, {p}', 'model', replace(settings, precision=p)) for p in args.compare]
    if 'model' not in args.skip:
        print(f"model only: {args.warmup + 1} warm-up calls, then {timing}", flush=True)
        model = [PathSpec('baseline', 'model'), PathSpec('ours', 'model', settings), *others]
        found, profile = measure('model', model, args, device, args.warmup, profile='profile' not in args.skip)
        results += found
    if 'pipeline' not in args.skip:
        print(f"data pipelines alone: {args.images} synthetic images an epoch, turns of at least 2 s", flush=True)
        specs = [PathSpec('baseline', 'pipeline')] + [replace(spec, kind='pipeline') for spec in ours_e2e]
        results += measure('pipeline', specs, args, device, 0, turn_s=2.0)[0]
    if 'e2e' not in args.skip:
        print(f"end to end: {args.images} synthetic images an epoch, 1 warm-up epoch, then {timing}; "
              f"our pipeline: {settings.augment}", flush=True)
        e2e = [PathSpec('baseline', 'e2e'), *ours_e2e, *(replace(spec, kind='e2e') for spec in others)]
        results += measure('e2e', e2e, args, device, 0)[0]
    parts = measure_parts(batch=args.batch_size, h=args.d_model, size=32 // args.patch_size,
                          k=args.kernel_size) if (args.parts or args.sweep) and not cuda else []
    if parts:
        print(f"one layer's parts alone, fp32 and bf16 in turns (ms a call):\n{parts_table(parts)}", flush=True)
    sweep: List[Result] = []
    if args.sweep:
        print(f"sweep (model only, every variant in turns): {timing}", flush=True)
        sweep = run_sweep(args, device, settings)
    for r in results + sweep:
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
              'efficiency': rates, 'profile': profile,
              'parts': [dict(part=n, fp32_ms=round(a, 2), bf16_ms=round(b, 2)) for n, a, b in parts]}
    data = (json.dumps(report, indent=2) + '\n').encode()
    if args.json:
        atomic_write(args.json, data)
    if args.write_docs:
        write_docs(report, device.type)


if __name__ == '__main__':
    main()
