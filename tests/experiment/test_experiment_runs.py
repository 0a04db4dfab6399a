"""
A run belongs to the experiment that made it: another experiment's script
refuses to resume or evaluate it, a finished run is not resumed, and
`--evaluate` says when it replaces an earlier evaluation or, for a run on
read-only storage, where it wrote instead. None of it changes a file it does
not own.
"""

import json
import time

import pytest
import torch

from cifar10_testdata import TINY, run_script
from imagefolder_testdata import run_imagenet


def snapshot(folder):
    """Every file under `folder` with its bytes."""
    return {p: p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


@pytest.fixture
def finished_run(synthetic_cifar, tmp_path):
    """A finished one-epoch CIFAR-10 run: its logs folder and its run folder."""
    logs = tmp_path / 'logs'
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', logs, '--epochs', '1', *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return logs, next(logs.glob('cifar10/*'))


def one_line(result, code):
    assert result.returncode == code, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_another_experiment_refuses_the_run(finished_run, tmp_path):
    logs, run = finished_run
    before = snapshot(logs)
    for flag in ('--resume', '--evaluate'):
        start = time.monotonic()
        result = run_imagenet(flag, run.name, '--logs-dir', logs)
        assert time.monotonic() - start < 60
        assert one_line(result, 2) == (
            f"imagenet.py: error: run {run.name} was made by cifar10.py, not imagenet.py; "
            f"use python experiments/cifar10.py {flag} {run.name}")
    assert snapshot(logs) == before

    # The other way round: a run that the ImageNet experiment made
    other = tmp_path / 'other'
    imagenet_run = other / 'imagenet' / run.name
    imagenet_run.mkdir(parents=True)
    checkpoint = torch.load(run / 'checkpoint.pt', weights_only=True)
    torch.save({**checkpoint, 'experiment': 'imagenet'}, imagenet_run / 'checkpoint.pt')
    before = snapshot(other)
    result = run_script('--evaluate', run.name, '--logs-dir', other)
    assert one_line(result, 2) == (
        f"cifar10.py: error: run {run.name} was made by imagenet.py, not cifar10.py; "
        f"use python experiments/imagenet.py --evaluate {run.name}")
    assert snapshot(other) == before


def test_resume_of_a_finished_run_changes_nothing(finished_run):
    logs, run = finished_run
    before = snapshot(logs)
    summary = json.loads((run / 'summary.json').read_text())
    assert set(summary['per_class_accuracy']) == {'red', 'green', 'blue', 'stripes'}
    assert summary['valid_images'] == 200
    result = run_script('--resume', run.name, '--logs-dir', logs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == (
        f"cifar10.py: run {run.name} is finished (1 epochs); nothing to resume, nothing "
        f"changed; its summary is {run / 'summary.json'}")
    assert snapshot(logs) == before


def test_a_run_that_stopped_before_its_summary_resumes_to_a_whole_summary(finished_run):
    logs, run = finished_run
    expected = json.loads((run / 'summary.json').read_text())
    (run / 'summary.json').unlink()
    result = run_script('--resume', run.name, '--logs-dir', logs)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / 'summary.json').read_text())
    for key in ('per_class_accuracy', 'valid_images', 'valid_accuracy', 'history'):
        assert summary[key] == expected[key]


def test_evaluate_says_when_it_replaces_an_evaluation(finished_run):
    logs, run = finished_run
    first = run_script('--evaluate', run.name, '--logs-dir', logs)
    assert first.returncode == 0, first.stderr[-3000:]
    assert 'replacing' not in first.stdout
    assert (run / 'evaluation.json').exists()
    second = run_script('--evaluate', run.name, '--logs-dir', logs)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"replacing the earlier evaluation in {run}" in second.stdout
