"""
Measured figures in prose come from the benchmark's results files. The tables
between the `<!-- results:... -->` markers of the Performance page are written
from `benchmarks/results/<device>.json` by `benchmarks/speed_report.py`; the
prose around them, and the pages that quote the same measurements, are written
by hand. These tests read the figures the prose states and compare them with
the files, so that a re-measurement cannot leave the prose behind: re-run the
benchmark, and a sentence that no longer holds fails here.
"""

import json
import re
from pathlib import Path
from typing import Dict, List, Set

import pytest

from litparse import parse_source

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / 'benchmarks' / 'results'
PERFORMANCE = ROOT / 'docs' / 'pages' / 'performance.md'
GPU_AUGMENT = ROOT / 'experiments' / 'datasets' / 'gpu_augment.py'
SPEED = ROOT / 'experiments' / 'runner' / 'speed.py'

NUMBER = r'\d[\d,]*(?:\.\d+)?'


def report(name: str) -> Dict:
    return json.loads((RESULTS / f'{name}.json').read_text(encoding='utf-8'))


def median(name: str, kind: str, path: str) -> float:
    found = [r['images_per_s'] for r in report(name)['results'] if (r['kind'], r['name']) == (kind, path)]
    assert found, f"{name}.json has no {kind} result {path!r}"
    return found[0]


def hand_written(text: str) -> str:
    """The page without the tables that speed_report.py writes between the results markers."""
    return re.sub(r'<!-- results:(\w+) -->.*?<!-- /results:\1 -->', '', text, flags=re.DOTALL)


def docstring_prose(path: Path) -> str:
    return '\n'.join(text for section in parse_source(path.read_text(encoding='utf-8')).sections
                     for _, text in section.docs)


PAGE = hand_written(PERFORMANCE.read_text(encoding='utf-8'))
PROSE = {'performance.md': PAGE, 'gpu_augment.py': docstring_prose(GPU_AUGMENT)}


def as_number(text: str) -> float:
    return float(text.replace(',', ''))


def written_as(value: float, text: str) -> bool:
    """Whether `text` is `value` rounded to the number of decimals `text` shows."""
    decimals = len(text.split('.')[1]) if '.' in text else 0
    return f'{value:.{decimals}f}' == text.replace(',', '')


def measured_rates() -> List[float]:
    """Every images/s the CPU reports hold: medians and single turns."""
    rates = []
    for path in RESULTS.glob('cpu*.json'):
        for r in json.loads(path.read_text(encoding='utf-8'))['results']:
            rates += [r['images_per_s'], *r['repeats']]
    return rates


def rates_in(prose: str) -> Set[str]:
    """Figures the prose gives in images/s: `39.6 images/s`, `23.2 → 39.6 images/s`,
    `42.7 and 39.5 against 28.7 and 25.8 images/s`."""
    chain = rf'((?:{NUMBER})(?:\s*(?:against|→|and|to|,)\s*{NUMBER})*)\s+images/s'
    return {n for m in re.finditer(chain, prose) for n in re.findall(NUMBER, m.group(1))}


# -- Every figure in images/s is one the benchmark measured

@pytest.mark.parametrize('page', sorted(PROSE) + ['speed.py'])
def test_every_rate_in_the_prose_was_measured(page):
    figures = rates_in(PROSE[page] if page in PROSE else docstring_prose(SPEED))
    assert figures, f"{page}: no figure in images/s found; the scan would check nothing"
    rates = measured_rates()
    unmeasured = sorted(f for f in figures if not any(written_as(r, f) for r in rates))
    assert not unmeasured, (f"{page} gives {unmeasured} images/s, which no report in benchmarks/results/ "
                            f"holds: take the figure from the report")


def test_pipeline_figures_are_the_reports():
    # "1148 images/s, 0.87 ms an image": a data pipeline alone, as the table of cpu.json shows it.
    pipelines = [r['images_per_s'] for r in report('cpu')['results'] if r['kind'] == 'pipeline']
    pairs = [(page, m) for page, prose in PROSE.items()
             for m in re.finditer(rf'({NUMBER}) images/s[^.,]*,\s+({NUMBER})\s+ms', prose)]
    assert {page for page, _ in pairs} == set(PROSE), "each page states a pipeline's rate and time"
    for page, m in pairs:
        assert any(written_as(r, m.group(1)) and written_as(1000 / r, m.group(2)) for r in pipelines), (
            f"{page}: {m.group(0)!r} is not a pipeline of benchmarks/results/cpu.json")


def test_the_opening_is_the_latest_run():
    opening = PAGE[:PAGE.index('## How it is measured')]
    cpu = report('cpu')
    step, epochs = median('cpu', 'model', 'ours'), median('cpu', 'e2e', 'ours')
    rates = re.search(rf'at ({NUMBER}) images/s for the\s+training step alone and ({NUMBER}) images/s for whole '
                      rf'epochs', opening)
    assert rates and written_as(step, rates.group(1)) and written_as(epochs, rates.group(2))
    ratios = re.search(rf'\*\*({NUMBER})×\*\* and \*\*({NUMBER})×\*\*', opening)
    assert ratios and written_as(cpu['ratios']['model: ours']['median'], ratios.group(1))
    assert written_as(cpu['ratios']['e2e: ours']['median'], ratios.group(2))


def test_the_honest_comparison_is_the_sweeps():
    ours = median('cpu_sweep', 'sweep', 'eager channels_last fused, kept memory')
    theirs = median('cpu_sweep', 'sweep', 'baseline loop, kept memory')
    claim = re.search(rf'\*\*({NUMBER})×\*\* as fast \(({NUMBER}) against ({NUMBER})\s+images/s', PAGE)
    assert claim, "the page compares ours with the reference-style loop that keeps freed memory too"
    assert written_as(ours / theirs, claim.group(1))
    assert written_as(ours, claim.group(2)) and written_as(theirs, claim.group(3))
    # Near the top: before the first table of results
    assert claim.start() < PAGE.index('## Latest results')


def test_the_sweep_table_is_the_sweeps():
    # The table of "Each setting on its own" is written by hand from cpu_sweep.json.
    by_name = {r['name']: r for r in report('cpu_sweep')['results']}
    section = PAGE[PAGE.index('### Each setting on its own'):]
    rows = re.findall(r'^\| ([^|]+) \| ([\d.]+) \| ([\d.]+)× \| ([\d., ]+) \|$', section, re.M)
    assert len(rows) == len(by_name)
    base = by_name['baseline loop']['repeats']
    for name, rate, _, turns in rows:
        name = name.replace(' (the default)', '').replace('1 thread', '1 threads')
        assert name in by_name, f"the sweep table names {name!r}, which cpu_sweep.json does not hold"
        assert written_as(by_name[name]['images_per_s'], rate)
        shown = [t.strip() for t in turns.split(',')]
        assert len(shown) == len(by_name[name]['repeats'])
        assert all(written_as(r, t) for r, t in zip(by_name[name]['repeats'], shown))
    assert len(base) == 5


# -- Counts that follow from the model

def test_fused_adamw_counts_the_models_tensors():
    import torch
    from labml_convmixer.model import convmixer
    model = convmixer(d_model=256, n_layers=8, kernel_size=5, patch_size=2, n_classes=10)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) or type(m).__name__ == 'DepthWiseConv2d']
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    conv_tensors = sum(1 for m in convs for _ in m.parameters(recurse=False))
    norm_tensors = sum(1 for m in norms for _ in m.parameters(recurse=False))
    claim = re.search(r'(\d+) convolutions with a weight and a\s+bias each, (\d+) tensors, (\d+) batch '
                      r'normalizations with a weight and a bias each,\s+(\d+) more', PAGE)
    assert claim, "the page says how many tensors fused AdamW updates"
    assert [int(g) for g in claim.groups()] == [len(convs), conv_tensors, len(norms), norm_tensors]


def pipeline_paragraphs() -> Dict[str, str]:
    """The prose about the per-image pipeline's cost: the augmentation page's opening and the
    Performance page's paragraph on batched augmentation."""
    augment = PROSE['gpu_augment.py']
    start = PAGE.index('**Batched augmentation.**')
    return {'gpu_augment.py': augment[:augment.index('Here the whole batch')],
            'performance.md': PAGE[start:PAGE.index('\n\n', start)]}


@pytest.mark.parametrize('page', ['gpu_augment.py', 'performance.md'])
def test_every_time_an_image_is_a_pipelines(page):
    # "0.3 ms per image per core" stood here while the benchmark measured 0.85-0.87 ms an image.
    pipelines = [r['images_per_s'] for r in report('cpu')['results'] if r['kind'] == 'pipeline']
    prose = pipeline_paragraphs()[page]
    times = re.findall(rf'({NUMBER})\s+ms\b', prose)
    assert times, f"{page}: the paragraph on the per-image pipeline gives no time an image"
    for t in times:
        assert any(written_as(1000 / r, t) for r in pipelines), (
            f"{page}: {t} ms an image is not a pipeline of benchmarks/results/cpu.json")
    # and no rate in words ("a few thousand images per second") where the report has a number
    assert not re.search(r'\b(?:few|several|many) (?:hundred|thousand)', prose)


def test_share_of_the_peak_is_the_reports():
    claim = re.search(rf'step reaches ({NUMBER}) % of the peak, ours ({NUMBER}) % \(({NUMBER}) % and\s+'
                      rf'({NUMBER}) % in the first run', PAGE)
    assert claim, "the page gives both paths' share of the peak, in both runs"
    shown = iter(claim.groups())
    for name in ('cpu', 'cpu_run1'):
        efficiency = report(name)['efficiency']
        assert written_as(efficiency['model: baseline']['percent_of_peak'], next(shown))
        assert written_as(efficiency['model: ours']['percent_of_peak'], next(shown))


# -- The bf16 precision plan, measured on a CPU with bf16 units

PLAN_PATHS = {'baseline (reference-style loop, fp32)': 'baseline', 'ours, fp32': 'ours, fp32',
              'ours, whole-model bf16': 'ours, bf16', 'ours, bf16 plan (the default there)': 'ours'}


def plan_ratio(kind: str):
    """The plan over fp32, per pair of turns: median, lowest, highest."""
    from benchmarks.timing import median_and_range, ratios_per_pair
    repeats = {r['name']: r['repeats'] for r in report('cpu_bf16_plan')['results'] if r['kind'] == kind}
    plan, fp32 = repeats['ours'], repeats['ours, fp32']
    return median_and_range(ratios_per_pair(plan, fp32))


def test_the_plans_table_and_ratios_are_its_report():
    plan = report('cpu_bf16_plan')
    assert {'amx_bf16', 'avx512_bf16'} & set(plan['machine']['isa']), "measured on a CPU with bf16 units"
    section = PAGE[PAGE.index('### The bf16 precision plan'):PAGE.index('<!-- end: bf16 precision plan -->')]
    rows = re.findall(rf'^\| ([^|]+) \| ({NUMBER}) \| ({NUMBER}) \|$', section, re.M)
    paths = {name: (model, e2e) for name, model, e2e in rows if name in PLAN_PATHS}
    assert paths.keys() == PLAN_PATHS.keys()
    for name, (model, e2e) in paths.items():
        assert written_as(median('cpu_bf16_plan', 'model', PLAN_PATHS[name]), model)
        assert written_as(median('cpu_bf16_plan', 'e2e', PLAN_PATHS[name]), e2e)
    claim = re.search(rf'\*\*({NUMBER})×\*\* the speed of fp32 \(({NUMBER}) to ({NUMBER})\s+over the pairs of '
                      rf'turns\) and whole epochs at \*\*({NUMBER})×\*\* \(({NUMBER}) to ({NUMBER})\)', section)
    assert claim, "the page gives the plan over fp32, model only and end to end, with ranges"
    for value, text in zip((*plan_ratio('model'), *plan_ratio('e2e')), claim.groups()):
        assert written_as(value, text)
    against = re.search(rf'against\s+the baseline that is ({NUMBER})× and ({NUMBER})×', section)
    assert written_as(plan['ratios']['model: ours']['median'], against.group(1))
    assert written_as(plan['ratios']['e2e: ours']['median'], against.group(2))
    assert written_as(plan_ratio('model')[0], re.search(rf'\(({NUMBER})× fp32 on a 2-core Xeon', PAGE).group(1))


@pytest.mark.parametrize('where', ['performance.md', 'speed.py'])
def test_the_parts_tables_are_the_plans_report(where):
    text = PAGE if where == 'performance.md' else docstring_prose(SPEED)
    section = text[text.index('| part | fp32 | bf16 |'):]
    rows = re.findall(rf'^\s*\| ([^|]+) \| ({NUMBER}) \| ({NUMBER}) \|$', section, re.M)[:4]
    parts = report('cpu_bf16_plan')['parts']
    assert len(rows) == len(parts) == 4
    for (_, fp32, bf16), part in zip(rows, parts):
        assert written_as(part['fp32_ms'], fp32) and written_as(part['bf16_ms'], bf16)


def test_the_speed_pages_plan_figures_are_its_report():
    prose = docstring_prose(SPEED)
    claim = re.search(rf'at ({NUMBER}) images/s against ({NUMBER}) in\s+fp32 and ({NUMBER}) in whole-model '
                      rf'bf16, ({NUMBER}) times fp32 over pairs of turns\s+\(({NUMBER}) to ({NUMBER})\), and '
                      rf'({NUMBER}) times end to end', prose)
    assert claim, "the precision plan's docstring gives the whole step's figures"
    expected = [median('cpu_bf16_plan', 'model', p) for p in ('ours', 'ours, fp32', 'ours, bf16')]
    expected += [*plan_ratio('model'), plan_ratio('e2e')[0]]
    for value, text in zip(expected, claim.groups()):
        assert written_as(value, text)
    default = re.search(rf'\s+({NUMBER}) times fp32\'s speed for the step', prose)
    assert default and written_as(plan_ratio('model')[0], default.group(1))


def test_the_plan_is_the_fastest_row_of_its_sweep():
    by_name = {r['name']: r for r in report('cpu_amx_sweep')['results']}
    plan, fp32 = by_name['eager bf16 plan, kept memory'], by_name['eager channels_last fused, kept memory']
    assert plan['images_per_s'] == max(r['images_per_s'] for r in by_name.values())
    section = PAGE[PAGE.index('### The bf16 precision plan'):PAGE.index('<!-- end: bf16 precision plan -->')]
    claim = re.search(rf'the fastest of its (\d+) rows at ({NUMBER}) images/s, \*\*({NUMBER})×\*\*\s+the fp32 path '
                      rf'with freed memory kept \(({NUMBER}) to ({NUMBER}) over the pairs of turns\),\s+ahead of '
                      rf'whole-model bf16 at ({NUMBER}) and the compiled fp32 path at ({NUMBER})', section)
    assert claim, "the plan's section gives the sweep on its machine"
    from benchmarks.timing import median_and_range, ratios_per_pair
    ratio = median_and_range(ratios_per_pair(plan['repeats'], fp32['repeats']))
    assert int(claim.group(1)) == len(by_name)
    assert written_as(plan['images_per_s'], claim.group(2))
    assert all(written_as(v, t) for v, t in zip(ratio, claim.groups()[2:5]))
    assert written_as(by_name['eager bf16, kept memory']['images_per_s'], claim.group(6))
    assert written_as(by_name['compiled, kept memory']['images_per_s'], claim.group(7))
    base = by_name['baseline loop']
    against = re.search(rf'at ({NUMBER}) images/s there against ({NUMBER}) in the first run,\s+so the plan\'s ratio '
                        rf'to it, ({NUMBER})× in the sweep', section)
    assert against and written_as(base['images_per_s'], against.group(1))
    assert written_as(median('cpu_bf16_plan', 'model', 'baseline'), against.group(2))
    assert written_as(median_and_range(ratios_per_pair(plan['repeats'], base['repeats']))[0], against.group(3))
