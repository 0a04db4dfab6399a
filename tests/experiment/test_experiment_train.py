"""
A short training run of the CIFAR-10 experiment on a small learnable data set:
it learns, writes its summary, plot and checkpoint, prints one line per epoch
without carriage returns, and `--evaluate` reports on it.
"""

import json
import re

import pytest

from cifar10_testdata import CLASSES, TINY, run_script


@pytest.fixture(scope='module')
def trained_run(synthetic_cifar, tmp_path_factory):
    logs = tmp_path_factory.mktemp('logs')
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', logs, '--epochs', '3', *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((logs / 'cifar10').iterdir())
    assert len(runs) == 1
    return result, runs[0]


def test_learns_well_above_chance(trained_run):
    _, run = trained_run
    summary = json.loads((run / 'summary.json').read_text())
    # Four classes: chance is 25 %
    assert summary['valid_accuracy'] >= 0.8
    assert summary['history'][-1]['train_loss'] < summary['history'][0]['train_loss']


def test_summary_plot_and_checkpoint_written(trained_run):
    _, run = trained_run
    summary = json.loads((run / 'summary.json').read_text())
    for key in ('valid_accuracy', 'valid_loss', 'epochs', 'seconds', 'images_per_second', 'changed_configs'):
        assert key in summary
    assert summary['epochs'] == 3
    assert summary['seconds'] > 0 and summary['images_per_second'] > 0
    assert summary['changed_configs']['d_model'] == 16
    assert summary['changed_configs']['compile'] is False
    assert 'weight_decay' not in summary['changed_configs']
    assert summary['classes'] == CLASSES
    assert (run / 'metrics.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (run / 'checkpoint.pt').stat().st_size > 0
    # labml's own files
    assert (run / 'configs.yaml').exists() and (run / 'run.yaml').exists()
    assert not list(run.glob('.*.tmp'))


def test_output_is_one_line_per_epoch(trained_run):
    result, run = trained_run
    assert '\r' not in result.stdout
    assert '\x1b[' not in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith('epoch ')]
    assert len(epoch_lines) == 3
    assert re.match(r'epoch 3/3 +train loss [\d.]+ acc +[\d.]+% +test loss [\d.]+ acc +[\d.]+% +[\d.]+ img/s +[\d.]+ s',
                    epoch_lines[-1])
    last = result.stdout.strip().splitlines()[-1]
    summary = json.loads((run / 'summary.json').read_text())
    assert f"test accuracy {100 * summary['valid_accuracy']:.2f}%" in last
    assert str(run) in last


def test_evaluate_reports_per_class_and_confusion_matrix(trained_run, synthetic_cifar):
    _, run = trained_run
    logs = run.parent.parent
    result = run_script('--logs-dir', logs, '--evaluate', run.name)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in CLASSES:
        assert re.search(rf'^{name} +\d+ +[\d.]+%$', result.stdout, re.M), result.stdout
    evaluation = json.loads((run / 'evaluation.json').read_text())
    summary = json.loads((run / 'summary.json').read_text())
    # The same weights on the same test set give the same accuracy as training's last epoch
    assert evaluation['test_accuracy'] == pytest.approx(summary['valid_accuracy'])
    assert evaluation['test_images'] == 200
    assert sum(map(sum, evaluation['confusion_matrix'])) == 200
    assert (run / 'confusion_matrix.png').read_bytes()[:4] == b'\x89PNG'
    # What the trained layers look like
    assert (run / 'filters.png').read_bytes()[:4] == b'\x89PNG'
    assert f"test accuracy {100 * evaluation['test_accuracy']:.2f}%" in result.stdout


def test_batched_augmentation_path_trains(synthetic_cifar, tmp_path):
    # The pipeline for GPUs, run on CPU tensors: data set on the device, augmented per batch
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', tmp_path, '--epochs', '2',
                        '--augment', 'batched', *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(next(tmp_path.glob('cifar10/*/summary.json')).read_text())
    assert summary['changed_configs']['augment'] == 'batched'
    assert summary['valid_accuracy'] >= 0.5
