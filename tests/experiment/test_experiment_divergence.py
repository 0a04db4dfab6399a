"""
A diverging run stops at its first non-finite loss with one line, keeps only
finite checkpoints and writes strict JSON; weights holding NaN are refused
where they are loaded.
"""

import json
import math
import time

import pytest
import torch

from cifar10_testdata import TINY, run_script
from experiments.runner.metrics import LossWatch
from experiments.runner.reports import write_summary
from labml_convmixer.model import convmixer
from labml_convmixer.pretrained import load_pretrained


def test_a_diverging_run_stops_with_one_line_and_no_nan_checkpoint(synthetic_cifar, tmp_path):
    start = time.monotonic()
    result = run_script('--data-dir', synthetic_cifar, '--logs-dir', tmp_path, '--epochs', '3',
                        *TINY, '--lr', '1e6')
    assert time.monotonic() - start < 120
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith('cifar10.py: error: the training loss of step ')
    assert 'is not finite (NaN or inf); stopped' in line
    assert line.endswith('train with a lower learning rate than --lr 1e+06')
    run = next(tmp_path.glob('cifar10/*'))
    assert not (run / 'summary.json').exists()
    # Any checkpoint kept is finite; none at all when the first epoch diverged
    if 'no checkpoint was written' in line:
        assert not (run / 'checkpoint.pt').exists()
    else:
        weights = torch.load(run / 'checkpoint.pt', weights_only=True)['model']
        assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert not list(run.glob('.checkpoint.pt.*'))


def test_the_watch_names_the_first_bad_step_at_its_check():
    watch = LossWatch(10, torch.device('cpu'), every=4)
    losses = [1.0, 0.9, 0.8, 0.7, 0.6, float('nan'), 0.5, float('inf'), 0.4, 0.3]
    found = [watch.add(i, torch.tensor(v)) for i, v in enumerate(losses)]
    # Checked after steps 4 and 8; the first bad one, index 5, found at the second check
    assert found == [None] * 7 + [5, None, None]
    assert watch.check() is None


def test_summary_json_is_strict_json(tmp_path):
    record = dict(epoch=1, train_loss=float('nan'), train_accuracy=0.1,
                  valid_loss=float('inf'), valid_accuracy=0.1, images_per_second=1.0,
                  seconds=1.0)
    write_summary(tmp_path, [record])
    text = (tmp_path / 'summary.json').read_text()
    assert 'NaN' not in text and 'Infinity' not in text

    def refuse(constant):
        raise ValueError(constant)
    summary = json.loads(text, parse_constant=refuse)
    assert summary['train_loss'] is None and summary['valid_loss'] is None
    assert summary['history'][0]['train_accuracy'] == 0.1


def test_load_pretrained_refuses_non_finite_weights_by_name(tmp_path):
    model = convmixer(8, 1, kernel_size=3, patch_size=4, n_classes=3)
    name = next(k for k, v in model.state_dict().items() if v.is_floating_point() and v.dim() > 1)
    weights = model.state_dict()
    weights[name] = weights[name].clone().fill_(math.inf)
    weights[name][0] = math.nan
    path = tmp_path / 'diverged.pth'
    torch.save(weights, path)
    fresh = convmixer(8, 1, kernel_size=3, patch_size=4, n_classes=3)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_pretrained(fresh, path)
    assert str(error.value) == (f"{path}: tensor {name} holds NaN or infinite values (a "
                                f"diverged run?); load_pretrained(..., allow_non_finite=True) "
                                f"loads them")
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())
    load_pretrained(fresh, path, allow_non_finite=True)
    assert not torch.isfinite(fresh.state_dict()[name]).any()
