"""
Fine-tuning with the ImageNet experiment on a small generated image folder:
starting weights with another classifier get a new one, the run learns,
writes its summary with top-5, per-class accuracy and the transforms,
`--evaluate` reproduces its last test accuracy without the starting weights
file, and a run killed mid-way resumes to exactly the same numbers.
"""

import json
import re
import sys

import pytest
import torch

from cifar10_testdata import ROOT, assert_resumed_exactly, kill_during_second_epoch
from imagefolder_testdata import CLASSES, IMAGENET, TINY, run_imagenet, write_folder

sys.path.insert(0, str(ROOT))
from labml_convmixer.model import convmixer  # noqa: E402
from labml_convmixer.pretrained import convert_state_dict  # noqa: E402

METRICS = ('train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy', 'valid_top5')


def write_start_weights(path):
    """A ConvMixer-16/2 for 10 classes, as the official training script saves one."""
    torch.manual_seed(5)
    model = convmixer(16, 2, kernel_size=3, patch_size=4, n_classes=10)
    torch.save({'state_dict': convert_state_dict(model.state_dict(), to='official'),
                'epoch': 1}, path)
    return path


def arguments(data, weights):
    return ['--data-dir', data, '--weights', weights, '--epochs', '3', '--seed', '3',
            '--scale', '0.35', *TINY, '--lr', '0.02']


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp('images'), n_train=40, n_val=10)


@pytest.fixture(scope='module')
def fine_tuned(folder, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('fine_tuned')
    weights = write_start_weights(tmp / 'start.pth.tar')
    result = run_imagenet(*arguments(folder, weights), '--logs-dir', tmp / 'logs')
    assert result.returncode == 0, result.stderr[-3000:]
    run = next((tmp / 'logs' / 'imagenet').iterdir())
    return result, run, weights


def test_fine_tunes_with_a_new_classifier(fine_tuned):
    result, run, _ = fine_tuned
    assert ("a new classifier for the 4 classes of the data replaces the starting "
            "weights' 10") in result.stdout
    summary = json.loads((run / 'summary.json').read_text())
    history = summary['history']
    # Four classes: chance is 25 %
    assert summary['valid_accuracy'] >= 0.75
    assert history[-1]['train_loss'] < history[0]['train_loss']
    assert torch.load(run / 'checkpoint.pt', weights_only=True)['model'][
        'classification.linear.weight'].shape == (4, 16)


def test_summary_and_epoch_lines(fine_tuned):
    result, run, weights = fine_tuned
    summary = json.loads((run / 'summary.json').read_text())
    assert summary['valid_images'] == 40 and summary['epochs'] == 3
    assert summary['valid_top5'] == 1.0 == summary['history'][-1]['valid_top5']
    assert set(summary['per_class_accuracy']) == set(CLASSES)
    assert summary['classes'] == CLASSES
    assert summary['changed_configs']['weights'] == str(weights)
    assert summary['transform'][1] == 'CenterCrop(size=(32, 32))'
    assert summary['train_transform'][0].startswith(
        'RandomResizedCrop(size=(32, 32), scale=(0.35, 1.0), ratio=(0.75, 1.3333), '
        'interpolation=bicubic')
    assert (run / 'metrics.png').read_bytes()[:4] == b'\x89PNG'
    lines = [line for line in result.stdout.splitlines() if line.startswith('epoch ')]
    assert len(lines) == 3 and '\r' not in result.stdout
    assert re.match(r'epoch 3/3 +train loss [\d.]+ acc +[\d.]+% +test loss [\d.]+ '
                    r'acc +[\d.]+% +top-5 +[\d.]+% +[\d.]+ img/s +[\d.]+ s$', lines[-1])


def test_evaluate_needs_no_starting_weights(fine_tuned, tmp_path):
    result, run, weights = fine_tuned
    # The run's checkpoint replaces the starting weights, so they are not read
    weights.rename(tmp_path / 'moved.pth.tar')
    result = run_imagenet('--logs-dir', run.parent.parent, '--evaluate', run.name)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluation = json.loads((run / 'evaluation.json').read_text())
    summary = json.loads((run / 'summary.json').read_text())
    assert evaluation['test_accuracy'] == pytest.approx(summary['valid_accuracy'])
    assert evaluation['test_top5'] == 1.0 and evaluation['test_images'] == 40
    assert evaluation['transform'] == summary['transform']
    for name in CLASSES:
        assert re.search(rf'^{name} +10 +[\d.]+%$', result.stdout, re.M), result.stdout
    assert (run / 'confusion_matrix.png').exists()


def test_resume_after_kill_is_exact(fine_tuned, folder, tmp_path):
    _, run, _ = fine_tuned
    expected = json.loads((run / 'summary.json').read_text())['history']
    weights = write_start_weights(tmp_path / 'start.pth.tar')
    logs = tmp_path / 'logs'
    kill_during_second_epoch([sys.executable, IMAGENET, *arguments(folder, weights),
                              '--logs-dir', logs])
    killed = next((logs / 'imagenet').iterdir())
    # Killed during epoch 2, or (on a slow machine) 3: saved epochs only, no summary
    assert torch.load(killed / 'checkpoint.pt', weights_only=True)['epoch'] in (1, 2)
    assert not (killed / 'summary.json').exists()

    # The starting weights are not needed any more: the checkpoint replaces them
    weights.unlink()
    resumed = run_imagenet('--resume', killed.name, '--logs-dir', logs)
    assert_resumed_exactly(resumed, killed, expected, METRICS)
