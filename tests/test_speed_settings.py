"""
Tests of the helpers in `experiments/speed.py` and a short run of the speed
benchmark, all on CPU.
"""

import json

import pytest
import torch
from torch import nn

from experiments import speed
from labml_convmixer.model import convmixer


def test_prepare_model_layout_and_names():
    model = convmixer(16, 1, kernel_size=3, patch_size=2, n_classes=10)
    names = list(model.state_dict())
    prepared = speed.prepare_model(model, 'cpu', channels_last=True, compile=False)
    assert list(prepared.state_dict()) == names
    weight = prepared.patch_emb.conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    plain = speed.prepare_model(convmixer(16, 1, 3, 2, 10), torch.device('cpu'), channels_last=False,
                                compile=False)
    assert plain.patch_emb.conv.weight.is_contiguous()


def test_make_optimizer_fused_switch():
    params = [nn.Parameter(torch.randn(4, 4))]
    fused = speed.make_optimizer(params, lr=0.1, weight_decay=0.01, device='cpu', fused=True)
    plain = speed.make_optimizer(params, lr=0.1, weight_decay=0.01, device='cpu', fused=False)
    assert isinstance(fused, torch.optim.AdamW)
    assert fused.defaults['fused'] is True
    assert not plain.defaults['fused']
    assert fused.defaults['lr'] == 0.1 and fused.defaults['weight_decay'] == 0.01


@pytest.mark.filterwarnings('ignore:bf16 on this CPU')
def test_autocast_and_scaler():
    x = torch.randn(2, 4)
    layer = nn.Linear(4, 4)
    with speed.autocast('cpu', 'fp32'):
        assert layer(x).dtype == torch.float32
    with speed.autocast('cpu', 'bf16'):
        assert layer(x).dtype == torch.bfloat16
    assert speed.make_grad_scaler('cpu', 'fp32') is None
    assert speed.make_grad_scaler('cpu', 'bf16') is None
    assert isinstance(speed.make_grad_scaler('cpu', 'fp16'), torch.amp.GradScaler)
    with pytest.raises(ValueError, match='precision'):
        speed.autocast('cpu', 'fp64')


def test_to_device_batch():
    images = torch.randn(4, 3, 8, 8)
    labels = torch.arange(4)
    a, b = speed.to_device_batch(images, labels, 'cpu', channels_last=True)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, images) and torch.equal(b, labels)
    a, _ = speed.to_device_batch(images, labels, 'cpu', channels_last=False)
    assert a.is_contiguous()


def test_default_settings():
    cpu = speed.default_settings('cpu')
    assert cpu.precision == 'fp32' and cpu.channels_last and cpu.fused
    assert cpu.compile == speed.compile_available('cpu')
    other = speed.default_settings('meta')
    assert not other.compile and other.precision == 'fp32'
    # The data pipeline: loader workers keep up with a CPU, a GPU needs batches augmented on it
    assert cpu.augment == 'torchvision' and other.augment == 'torchvision'
    assert speed.default_settings('cuda').augment == 'batched'


def test_benchmark_runs_and_reports(tmp_path, capsys):
    # A tiny, uncompiled run: every measurement is there and positive, with the ratios.
    from benchmarks.train_speed import main
    out = tmp_path / 'results.json'
    main(['--device', 'cpu', '--d-model', '16', '--n-layers', '1', '--batch-size', '8', '--images', '16',
          '--turn-seconds', '0.05', '--seconds', '0.1', '--steps', '1', '--warmup', '1', '--no-compile',
          '--workers', '0', '--json', str(out)])
    printed = capsys.readouterr().out
    assert 'ratios ours / baseline' in printed and 'machine:' in printed and 'GFLOP' in printed
    report = json.loads(out.read_text())
    kinds = sorted((r['kind'], r['name']) for r in report['results'])
    assert kinds == [('e2e', 'baseline'), ('e2e', 'ours'), ('e2e', 'ours, batched augment'),
                     ('model', 'baseline'), ('model', 'ours'),
                     ('pipeline', 'baseline'), ('pipeline', 'ours'), ('pipeline', 'ours, batched augment')]
    # At least three turns each, in turns, and a ratio for every pair of them
    model = {r['name']: r for r in report['results'] if r['kind'] == 'model'}
    assert len(model['ours']['repeats']) == len(model['baseline']['repeats']) >= 3
    ratio = report['ratios']['model: ours']
    assert len(ratio['pairs']) == len(model['ours']['repeats'])
    assert ratio['low'] <= ratio['median'] <= ratio['high']
    # The arithmetic of the step, and the share of the peak each path reaches
    assert sum(report['flops_per_image'].values()) > 0
    assert set(report['efficiency']) == {'model: baseline', 'model: ours'}
    assert set(report['profile']) == {'baseline', 'ours'}
    assert 'isa' in report['machine'] and report['machine']['torch_cpu_capability']
    # On CPU our end-to-end path is the experiment's default there: per-image torchvision transforms
    ours = next(r for r in report['results'] if (r['kind'], r['name']) == ('e2e', 'ours'))
    assert ours['settings']['augment'] == 'torchvision'
    for r in report['results']:
        assert r['images_per_s'] > 0 and len(r['repeats']) >= 1
    assert report['machine']['cpu_cores'] >= 1


def test_benchmark_takes_its_pipeline_from_the_device_defaults(tmp_path, monkeypatch):
    # With `batched` as the device's default our end-to-end path uses it, and the
    # extra "batched augment" row (only there to compare with) is left out.
    from dataclasses import replace
    from benchmarks import train_speed
    monkeypatch.setattr(train_speed, 'default_settings',
                        lambda device: replace(speed.default_settings(device), augment='batched'))
    out = tmp_path / 'results.json'
    small = ['--device', 'cpu', '--d-model', '8', '--n-layers', '1', '--batch-size', '8', '--images', '16',
             '--turn-seconds', '0.05', '--seconds', '0.1', '--no-compile', '--workers', '0',
             '--skip', 'model', '--skip', 'pipeline', '--json', str(out)]
    train_speed.main(small)
    results = json.loads(out.read_text())['results']
    assert [r['name'] for r in results] == ['baseline', 'ours']
    assert results[1]['settings']['augment'] == 'batched'
    # `--our-augment` overrides the default
    train_speed.main(small + ['--our-augment', 'torchvision'])
    results = json.loads(out.read_text())['results']
    assert [r['name'] for r in results] == ['baseline', 'ours', 'ours, batched augment']
    assert results[1]['settings']['augment'] == 'torchvision'


def test_bf16_on_a_cpu_without_bf16_instructions_warns(monkeypatch):
    monkeypatch.setattr(speed, 'cpu_has_fast_bf16', lambda: False)
    with pytest.warns(UserWarning, match='slower than fp32'):
        speed.autocast('cpu', 'bf16')
    monkeypatch.setattr(speed, 'cpu_has_fast_bf16', lambda: True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        speed.autocast('cpu', 'bf16')
        speed.autocast('cpu', 'fp32')


def test_benchmark_plot_is_the_same_file_for_the_same_numbers(tmp_path):
    # The Performance page's chart is rebuilt from the JSON report: the same
    # numbers must give the same SVG, so that a rebuild changes nothing
    from benchmarks.speed_report import Result, plot
    results = [Result('baseline', 'model', 10.0, [9.0, 11.0], 1.0, {}),
               Result('ours', 'model', 15.0, [14.0, 16.0], 1.0, {})]
    machine = {'cpu': 'test CPU', 'cpu_cores': 2, 'torch': torch.__version__}
    plot(results, [], machine, tmp_path / 'a.svg')
    plot(results, [], machine, tmp_path / 'b.svg')
    assert (tmp_path / 'a.svg').read_bytes() == (tmp_path / 'b.svg').read_bytes()
    assert b'Date' not in (tmp_path / 'a.svg').read_bytes()


def test_time_chart_shows_each_path_and_the_peak(tmp_path):
    from benchmarks.speed_report import plot_time
    report = {'profile': {'baseline': {'convolution backward': 0.03, 'batch norm, GELU, add': 0.02},
                          'ours': {'convolution backward': 0.015, 'batch norm, GELU, add': 0.02}},
              'peak': {'fp32_gflops': 100.0}, 'flops_per_image': {'point-wise': 0.5e9}}
    plot_time(report, tmp_path / 'time.svg')
    svg = (tmp_path / 'time.svg').read_text()
    # The totals per image, and the time the arithmetic takes at the peak: 0.5 GFLOP at 100 GFLOP/s
    assert '50.0 ms' in svg and '35.0 ms' in svg and 'fp32 peak: 5.0 ms' in svg
