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
measured configuration, with the median images/s, every timed repeat and the
warm-up time. With `--write-docs` the report goes to three places:

| file | what it holds |
|---|---|
| `benchmarks/results/<device>.json` | the report itself, `cpu.json` or `cuda.json` |
| `docs/pages/performance.svg` | a bar chart of the medians |
| `docs/pages/performance.md` | the tables between the markers `<!-- results:<device> -->` and `<!-- /results:<device> -->` |

The page's prose around the markers is written by hand and left as it is;
`--docs-only` rebuilds the tables and the plot from the JSON file alone, without
measuring anything. Every file is written with the experiment's
[atomic writer](../experiments/runs.html#atomic_write_bytes), so an interrupted
run leaves the previous version or the new one, never half a file.

The load average of the machine is recorded with the numbers: on a machine
shared with other work it says how far the absolute numbers can be trusted,
while the ratios, measured in turns, hold up better.
"""

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import torch

from experiments.runs import atomic_write_bytes

# Where the reports and the page live, from the project's root.
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results'
PAGE = ROOT / 'docs' / 'pages' / 'performance.md'
PLOT = ROOT / 'docs' / 'pages' / 'performance.svg'


@dataclass
class Result:
    """One measured configuration."""
    name: str
    kind: str  # 'model', 'e2e' or 'sweep'
    images_per_s: float
    repeats: List[float]
    warmup_s: float
    settings: Dict


# ## The machine
#
# Enough to tell two runs' machines apart, and to judge their numbers: the CPU's
# name from `/proc/cpuinfo` where there is one, the GPU's, and the versions.

def machine_info(device: torch.device) -> Dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        'cpu': cpu,
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


# ## Writing the report

def atomic_write(path: Path, data: bytes):
    """Write `data` so that a crash never leaves half a file, with the experiment's checkpoint writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda f: f.write(data))


def markdown_table(results: List[Result]) -> str:
    lines = ['| measurement | path | images/s (median) | repeats | warm-up s |',
             '|---|---|---:|---|---:|']
    for r in results:
        lines.append(f"| {r.kind} | {r.name} | {r.images_per_s:.1f} | "
                     f"{', '.join(f'{x:.1f}' for x in r.repeats)} | {r.warmup_s:.1f} |")
    return '\n'.join(lines)


def plot(results: List[Result], sweep: List[Result], machine: Dict, path: Path):
    """A horizontal bar a measurement, ours in blue and the baseline in grey."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = [(f"{r.kind}: {r.name}", r.images_per_s) for r in results + sweep]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
    labels = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    colours = ['#1f77b4' if 'ours' in l or 'compiled' in l else '#999999' for l in labels]
    ax.barh(labels, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.1f}", va='center', fontsize=8)
    ax.set_xlabel('images / second (median)')
    where = machine.get('gpu') or f"{machine['cpu']}, {machine['cpu_cores']} cores"
    ax.set_title(f"ConvMixer training speed on {where}\n(torch {machine['torch']})", fontsize=9)
    ax.set_xlim(0, max(values) * 1.15)
    fig.tight_layout()
    atomic_write_bytes(path, lambda f: fig.savefig(f, format=path.suffix[1:],
                                                    metadata={'Date': None} if path.suffix == '.svg' else None))
    plt.close(fig)


# ## The Performance page

def page_section(report: Dict) -> str:
    """The Markdown that the Performance page shows for one device's report."""
    m = report['machine']
    results = [Result(**r) for r in report['results']]
    where = (f"{m['gpu']} (torch {m['torch']})" if 'gpu' in m else
             f"{m['cpu']}, {m['cpu_cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"Python {m['python']}")
    lines = [f"Machine: {where}. 1-minute load average when the run started: {m.get('load_average_1min')} "
             f"(other work on the machine slows every number; the ratios compare runs made in turns).", '',
             f"Command: `{report['command'].strip()}`", '']
    ratios = []
    for kind, label in (('model', 'model only'), ('e2e', 'end to end')):
        by_name = {r.name: r for r in results if r.kind == kind}
        if {'ours', 'baseline'} <= by_name.keys():
            ratios.append((label, by_name['baseline'].images_per_s, by_name['ours'].images_per_s))
    if ratios:
        lines += ['| measurement | baseline images/s | ours images/s | ours / baseline |', '|---|---:|---:|---:|']
        lines += [f"| {label} | {b:.1f} | {o:.1f} | **{o / b:.2f}×** |" for label, b, o in ratios]
        lines.append('')
    lines += ['All measurements (median of the timed repeats; warm-up includes compilation):', '',
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
    plot([r for r in results if r.kind != 'sweep'], [r for r in results if r.kind == 'sweep'],
         report['machine'], PLOT)
    write_page(report, device_type)
    print(f"wrote benchmarks/results/{device_type}.json, docs/pages/performance.svg and the table of "
          f"docs/pages/performance.md")
