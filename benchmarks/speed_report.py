"""
---
title: Benchmark reports
summary: >
  What a run of the speed benchmark records, and how it becomes the
  Performance page's tables and plot: the machine, the medians and every
  repeat, written to a JSON file that the page is rebuilt from.
nav_order: 3
---

# Benchmark reports

A run of the [speed benchmark](train_speed.html) ends with a *report*: the
machine it ran on, its command line, and one [`Result`](#Result) for every
measured configuration, with the median images/s, every timed turn and the
warm-up time; the ratios per pair of turns, the FLOP count, the CPU's
estimated peak and the profile by operator group come with them. With
`--write-docs` the report goes to four places:

| file | what it holds |
|---|---|
| `benchmarks/results/<device>.json` | the report itself, `cpu.json` or `cuda.json` |
| `docs/pages/performance.svg` | a bar chart of the medians |
| `docs/pages/performance-time.svg` | where the time of a step goes, against the fp32 peak |
| `docs/pages/performance.md` | the tables between the markers `<!-- results:<device> -->` and `<!-- /results:<device> -->` |

The page's prose around the markers is written by hand and left as it is;
`--docs-only` rebuilds the tables and the plots from the JSON file alone, without
measuring anything, and the same report gives the same files. Every file is written with the experiment's
[atomic writer](../labml_convmixer/atomic.html#atomic_write_bytes), so an interrupted
run leaves the previous version or the new one, never half a file.

The load average of the machine is recorded with the numbers: on a machine
shared with other work it says how far the absolute numbers can be trusted,
while the ratios, measured in turns, hold up better.
"""

import json
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import torch

from benchmarks.flops import cpu_flags, read_cpuinfo
from benchmarks.timing import median_and_range, ratios_per_pair
from experiments.runner.reports import pyplot, save_figure
from labml_convmixer.atomic import atomic_write_bytes

# Where the reports and the page live, from the project's root.
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results'
PAGE = ROOT / 'docs' / 'pages' / 'performance.md'
PLOT = ROOT / 'docs' / 'pages' / 'performance.svg'
PLOT_TIME = ROOT / 'docs' / 'pages' / 'performance-time.svg'


@dataclass
class Result:
    """One measured configuration."""
    name: str
    kind: str  # 'model', 'e2e' or 'sweep'
    images_per_s: float
    repeats: List[float]
    warmup_s: float
    settings: Dict
    timed_s: float = 0.0  # seconds of timed work, all turns together


# ## The machine
#
# Enough to tell two runs' machines apart, and to judge their numbers: the CPU's
# name, clock and vector instructions from `/proc/cpuinfo` where there is one
# (AVX-512 and AMX decide what bf16 can gain), PyTorch's view of the CPU, the
# GPU's name, and the versions.

# The instruction-set flags that matter for training speed
ISA_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16')


def machine_info(device: torch.device) -> Dict:
    cpuinfo = read_cpuinfo()
    name = re.search(r'^model name\s*:\s*(.*)$', cpuinfo, re.M)
    clock = re.search(r'^cpu MHz\s*:\s*([\d.]+)', cpuinfo, re.M)
    info = {
        'cpu': name.group(1).strip() if name else platform.processor() or platform.machine(),
        'cpu_mhz': float(clock.group(1)) if clock else None,
        'isa': [flag for flag in ISA_FLAGS if flag in cpu_flags(cpuinfo)],
        # What PyTorch's CPU kernels were dispatched for ('AVX2', 'AVX512', ...)
        'torch_cpu_capability': torch.backends.cpu.get_cpu_capability(),
        'cpu_cores': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'python': platform.python_version(),
        'device': str(device),
        # Other work on the machine slows every measurement; recorded to judge the numbers.
        'load_average_1min': round(os.getloadavg()[0], 2) if hasattr(os, 'getloadavg') else None,
    }
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['gpu_count'] = torch.cuda.device_count()
    return info


# ## Ratios and efficiency
#
# The speed-up is taken per pair of turns (see [timing](timing.html)), and the
# achieved arithmetic rate from the [FLOP count](flops.html).

def show(r: Result):
    """One path's line: its median rate, the range over its turns, time timed and warm-up."""
    low, high = min(r.repeats), max(r.repeats)
    print(f"  {r.kind:8s} {r.name:36s} {r.images_per_s:9.1f} images/s  (turns {low:.1f} to {high:.1f}, "
          f"{len(r.repeats)} turns, {r.timed_s:.0f} s timed; warm-up {r.warmup_s:.1f} s)", flush=True)


def ratio_summary(results: List[Result]) -> Dict[str, Dict]:
    """Ours over baseline per pair of turns, for each measurement: median and range."""
    summary = {}
    for kind in ('model', 'e2e'):
        by_name = {r.name: r for r in results if r.kind == kind}
        for name in (n for n in by_name if n.startswith('ours')):
            if 'baseline' in by_name:
                ratios = ratios_per_pair(by_name[name].repeats, by_name['baseline'].repeats)
                median, low, high = median_and_range(ratios)
                summary[f'{kind}: {name}'] = dict(median=median, low=low, high=high,
                                                  pairs=[round(x, 3) for x in ratios])
    return summary


def efficiency(results: List[Result], flops_per_image: float, peak) -> Dict[str, Dict]:
    """Achieved GFLOP/s of each model-only path, and its share of the estimated peak."""
    rows = {}
    for r in results:
        if r.kind in ('model', 'sweep'):
            gflops = r.images_per_s * flops_per_image / 1e9
            limit = None if peak is None else (peak.bf16_gflops if r.settings.get('precision') == 'bf16'
                                               else peak.fp32_gflops)
            rows[f'{r.kind}: {r.name}'] = dict(gflops=round(gflops, 1),
                                               percent_of_peak=None if limit is None else
                                               round(100 * gflops / limit, 1))
    return rows



# ## Writing the report

def atomic_write(path: Path, data: bytes):
    """Write `data` so that a crash never leaves half a file, with the experiment's checkpoint writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(data))


def markdown_table(results: List[Result]) -> str:
    lines = ['| measurement | path | images/s (median) | turns, images/s | timed s | warm-up s |',
             '|---|---|---:|---|---:|---:|']
    for r in results:
        lines.append(f"| {r.kind} | {r.name} | {r.images_per_s:.1f} | "
                     f"{', '.join(f'{x:.1f}' for x in r.repeats)} | {r.timed_s:.0f} | {r.warmup_s:.1f} |")
    return '\n'.join(lines)


def plot(results: List[Result], sweep: List[Result], machine: Dict, path: Path):
    """A horizontal bar a measurement, ours (and the sweep's variants of it) in blue, the baseline in grey."""
    plt = pyplot()

    rows = [(f"{r.kind}: {r.name}", r.images_per_s) for r in results + sweep]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
    labels = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    colours = ['#999999' if 'baseline' in l else '#1f77b4' for l in labels]
    ax.barh(labels, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.1f}", va='center', fontsize=8)
    ax.set_xlabel('images / second (median of the turns)')
    where = machine.get('gpu') or f"{machine['cpu']}, {machine['cpu_cores']} cores"
    ax.set_title(f"ConvMixer training speed on {where}\n(torch {machine['torch']})", fontsize=9)
    ax.set_xlim(0, max(values) * 1.15)
    fig.tight_layout()
    save_figure(fig, path)


def plot_time(report: Dict, path: Path):
    """
    Where the time of a training step goes, per image, for the baseline and
    ours: one stacked bar each, by operator group, and a dashed line at the time
    the step's arithmetic would take at the CPU's estimated fp32 peak.
    """
    plt = pyplot()

    profile, peak = report['profile'], report.get('peak')
    groups = list(dict.fromkeys(g for by_group in profile.values() for g in by_group))
    fig, ax = plt.subplots(figsize=(8, 2.6))
    names = list(profile)[::-1]
    left = [0.0] * len(names)
    for i, group in enumerate(groups):
        ms = [1000 * profile[name].get(group, 0.0) for name in names]
        ax.barh(names, ms, left=left, color=plt.cm.tab10(i), label=group)
        left = [a + b for a, b in zip(left, ms)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:.1f} ms", va='center', fontsize=8)
    if peak:
        at_peak = 1000 * sum(report['flops_per_image'].values()) / (peak['fp32_gflops'] * 1e9)
        ax.axvline(at_peak, color='black', linestyle='--', linewidth=1)
        ax.text(at_peak, len(names) - 0.45, f" arithmetic at fp32 peak: {at_peak:.1f} ms", fontsize=8)
    ax.set_xlabel('milliseconds of CPU time per image, one training step (profiled)')
    ax.set_xlim(0, max(left) * 1.25)
    ax.legend(fontsize=7, ncol=3, loc='upper center', bbox_to_anchor=(0.5, -0.35), frameon=False)
    fig.tight_layout()
    save_figure(fig, path)


# ## The Performance page

def page_section(report: Dict) -> str:
    """The Markdown that the Performance page shows for one device's report."""
    m = report['machine']
    results = [Result(**r) for r in report['results']]
    where = (f"{m['gpu']} (torch {m['torch']})" if 'gpu' in m else
             f"{m['cpu']} at {m.get('cpu_mhz') or '?'} MHz, {m['cpu_cores']} cores, "
             f"instructions {', '.join(m.get('isa', [])) or 'unknown'} (PyTorch's kernels: "
             f"{m.get('torch_cpu_capability')}), {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"Python {m['python']}")
    lines = [f"Machine: {where}. 1-minute load average when the run started: {m.get('load_average_1min')}.",
             '', f"Command: `{report['command'].strip()}`", '']
    by_key = {(r.kind, r.name): r for r in results}
    ratios = report.get('ratios', {})
    if ratios:
        lines += ['| measurement | baseline images/s | ours images/s | ours / baseline, per pair of turns |',
                  '|---|---:|---:|---|']
        for key, r in ratios.items():
            kind, name = key.split(': ', 1)
            base, ours = by_key[(kind, 'baseline')], by_key[(kind, name)]
            label = {'model': 'model only', 'e2e': 'end to end'}[kind] + ('' if name == 'ours' else f' ({name})')
            lines.append(f"| {label} | {base.images_per_s:.1f} | {ours.images_per_s:.1f} | "
                         f"**{r['median']:.2f}×** ({r['low']:.2f} to {r['high']:.2f}) |")
        lines.append('')
    pipelines = [r for r in results if r.kind == 'pipeline']
    step = by_key.get(('model', 'ours'))
    if pipelines and step:
        lines += ['Data pipelines alone, against the time of our training step (model only):', '',
                  '| pipeline | images/s | ms an image | share of our step |', '|---|---:|---:|---:|']
        lines += [f"| {r.name} | {r.images_per_s:.0f} | {1000 / r.images_per_s:.2f} | "
                  f"{100 * step.images_per_s / r.images_per_s:.1f} % |" for r in pipelines]
        lines.append('')
    flops, peak = report.get('flops_per_image'), report.get('peak')
    if flops and report.get('efficiency'):
        total = sum(flops.values())
        lines.append(f"Arithmetic: {total / 1e9:.3f} GFLOP an image for a training step (" +
                     ', '.join(f"{k} {100 * v / total:.1f} %" for k, v in flops.items()) + '). ' +
                     ('' if not peak else
                      f"Estimated peak: {peak['fp32_gflops']:.0f} GFLOP/s fp32 and {peak['bf16_gflops']:.0f} "
                      f"bf16 ({peak['cores']} cores × {peak['ghz']:.2f} GHz × {peak['fp32_per_cycle']} and "
                      f"{peak['bf16_per_cycle']} operations a cycle, {peak['isa']})."))
        lines += ['', '| path (model only) | GFLOP/s | % of peak |', '|---|---:|---:|']
        for name, r in report['efficiency'].items():
            share = '-' if r['percent_of_peak'] is None else f"{r['percent_of_peak']:.1f}"
            lines.append(f"| {name} | {r['gflops']:.1f} | {share} |")
        lines.append('')
    lines += ['All measurements (median of the timed turns; warm-up includes compilation):', '',
              markdown_table(results)]
    return '\n'.join(lines)


def write_page(report: Dict, device_type: str, page: Path = PAGE):
    """
    Replace the results between `<!-- results:cpu -->` and `<!-- /results:cpu -->`
    (or `cuda`) on the Performance page; the rest of the page is prose.
    """
    start, end = f'<!-- results:{device_type} -->', f'<!-- /results:{device_type} -->'
    text = page.read_text()
    if start not in text or end not in text:
        print(f"note: {page} has no {start} ... {end} markers; the table was not written there")
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    atomic_write(page, (head + start + '\n' + page_section(report) + '\n' + end + tail).encode())


def write_docs(report: Dict, device_type: str):
    results = [Result(**r) for r in report['results']]
    atomic_write(RESULTS / f'{device_type}.json',
                 (json.dumps(report, indent=2) + '\n').encode())
    plot([r for r in results if r.kind not in ('sweep', 'pipeline')], [r for r in results if r.kind == 'sweep'],
         report['machine'], PLOT)
    if report.get('profile'):
        plot_time(report, PLOT_TIME)
    write_page(report, device_type)
    print(f"wrote benchmarks/results/{device_type}.json, the plots in docs/pages/ and the tables of "
          f"docs/pages/performance.md")
