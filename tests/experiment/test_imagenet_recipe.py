"""
The ImageNet experiment's two recipes: fine-tuning when the run starts from
weights, the official from-scratch recipe otherwise, each setting given on the
command line winning over its recipe; the crop scale's default by image size;
`--scale LOW [HIGH]`; the recipe in the run's logged configs and summary.
"""

import json
import math
import sys

import pytest
import torch
import yaml

from labml import experiment

from cifar10_testdata import ROOT
from imagefolder_testdata import run_imagenet, write_folder

sys.path.insert(0, str(ROOT))
from experiments import imagenet  # noqa: E402
from experiments.runner import launch, trainer  # noqa: E402
from experiments.runner.errors import UserError  # noqa: E402

FINE_TUNE = {'recipe': 'fine-tune', 'lr': 5e-4, 'weight_decay': 0.05,
             'schedule': 'warmup-cosine', 'adam_eps': 1e-8, 'clip_grad': 0.0}
SCRATCH = {'recipe': 'scratch', 'lr': 0.01, 'weight_decay': 2e-5,
           'schedule': 'one-cycle', 'adam_eps': 1e-8, 'clip_grad': 1.0}


def parse(*argv):
    parser = launch.build_parser(imagenet.Configs, 'imagenet.py', '',
                                 imagenet.IMAGENET_CHECKS, eval_only=True)
    return launch.parse_overrides(parser.parse_args(list(argv)), imagenet.Configs,
                                  imagenet.IMAGENET_CHECKS, 1, imagenet.check_settings)


def computed(*argv):
    """The configs a run with these flags computes (no data is read)."""
    # As the runner computes them where it records nothing: labml's public API
    c = imagenet.Configs()
    experiment.evaluate()
    experiment.configs(c, parse(*argv))
    return c


def recipe_of(c):
    return {key: getattr(c, key) for key in FINE_TUNE}


@pytest.mark.parametrize('argv, expected', [
    ([], SCRATCH),
    (['--model', 'convmixer_256_8'], SCRATCH),
    (['--weights', __file__], FINE_TUNE),
    (['--model', 'convmixer_768_32', '--pretrained'], FINE_TUNE),
])
def test_the_starting_point_chooses_the_recipe(argv, expected):
    assert recipe_of(computed(*argv)) == pytest.approx(expected)


def test_explicit_settings_win_over_the_recipe():
    c = computed('--lr', '0.02', '--set', 'clip_grad=0')
    assert recipe_of(c) == pytest.approx({**SCRATCH, 'lr': 0.02, 'clip_grad': 0.0})
    c = computed('--weights', __file__, '--recipe', 'scratch', '--schedule', 'warmup-cosine')
    assert recipe_of(c) == pytest.approx({**SCRATCH, 'schedule': 'warmup-cosine'})
    # The from-scratch learning rate follows the root of the batch
    assert computed('--batch-size', '512').lr == pytest.approx(0.02)
    assert computed('--batch-size', '512', '--weights', __file__).lr == 5e-4


def test_schedules():
    c = computed('--epochs', '10')
    assert [c.learning_rate(t) for t in (0, 2, 4, 8, 10)] == pytest.approx(
        [0, SCRATCH['lr'] / 2, SCRATCH['lr'], SCRATCH['lr'] / 20, 0])
    c = computed('--epochs', '10', '--weights', __file__)
    assert c.learning_rate(0.5) == pytest.approx(2.5e-4)
    assert c.learning_rate(5.5) == pytest.approx(2.5e-4)


@pytest.mark.parametrize('image_size, scale', [(32, 0.75), (64, 0.75), (113, 0.75),
                                               (114, 0.08), (224, 0.08)])
def test_the_default_crop_scale_follows_the_image_size(image_size, scale):
    # 8 % of the area only while its side keeps at least 32 pixels
    assert imagenet.default_scale(image_size) == scale
    for start in ([], ['--weights', __file__]):
        c = computed('--image-size', str(image_size), *start)
        assert (c.scale, c.scale_max) == (scale, 1.0)


def test_scale_takes_one_or_two_numbers():
    assert parse('--scale', '0.75') == {'scale': 0.75}
    assert parse('--scale', '0.75', '1.0') == {'scale': 0.75, 'scale_max': 1.0}
    crop = computed('--scale', '0.5', '0.9', '--image-size', '32').train_transform()
    assert 'scale=(0.5, 0.9)' in repr(crop.transforms[0])
    # The upper bound has one spelling on the command line, and stays a setting
    assert parse('--set', 'scale_max=0.9') == {'scale_max': 0.9}
    with pytest.raises(SystemExit):
        parse('--scale-max', '0.9')
    # The help shows both spellings and the rule for the default
    help_text = launch.build_parser(imagenet.Configs, 'imagenet.py', '',
                                    imagenet.IMAGENET_CHECKS).format_help()
    assert '--scale LOW [HIGH' in help_text
    flat = ' '.join(help_text.split())
    assert '0.08 for images of 114 pixels and more, else 0.75' in flat
    # and which recipe a run gets, with each recipe's values
    assert '(default fine-tune with --pretrained or --weights, else scratch)' in flat
    assert '(default fine-tune 0.05, scratch 2e-05)' in flat


@pytest.mark.parametrize('argv, message', [
    (['--scale', '0.75', '1.0', '2'],
     '--scale takes one or two numbers (LOW, or LOW HIGH), got 3: 0.75 1.0 2'),
    (['--scale', 'abc'], "scale must be a number, got 'abc'"),
    (['--scale', '0.9', '0.5'],
     'the crop scale goes from LOW to HIGH: --scale 0.9 0.5 has LOW above HIGH'),
    (['--scale', '0.5', '1.5'], 'scale_max must be at most 1, got 1.5'),
    (['--recipe', 'pretrain'], "unknown recipe 'pretrain': choose one of fine-tune, scratch"),
])
def test_bad_values_are_one_clear_error(argv, message):
    with pytest.raises(UserError) as error:
        parse(*argv)
    assert str(error.value) == message and error.value.exit_code == 2


def test_bad_scale_from_the_command_line_is_one_line(tmp_path):
    result = run_imagenet('--data-dir', tmp_path, '--scale', '0.75', '1.0', '2')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'imagenet.py: error: --scale takes one or two numbers (LOW, or LOW HIGH), '
        'got 3: 0.75 1.0 2']


def test_gradient_clipping_before_the_step():
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    optimizer.register_step_pre_hook(trainer.clip_before_step(0.5))
    (1000 * model(torch.ones(2, 4)).sum()).backward()
    norm = lambda: torch.linalg.vector_norm(  # noqa: E731
        torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert norm() > 100
    optimizer.step()
    assert norm() == pytest.approx(0.5, rel=1e-4)


def test_a_run_logs_its_recipe(tmp_path):
    """A tiny from-scratch run: its configs and summary say which recipe it used."""
    folder = write_folder(tmp_path / 'images', n_train=8, n_val=4)
    result = run_imagenet(
        '--data-dir', folder, '--logs-dir', tmp_path / 'logs', '--epochs', '1',
        '--d-model', '16', '--n-layers', '1', '--kernel-size', '3', '--patch-size', '4',
        '--image-size', '32', '--batch-size', '16', '--num-workers', '0', '--no-compile',
        '--precision', 'fp32', '--weight-decay', '0.01')
    assert result.returncode == 0, result.stderr[-3000:]
    assert ('recipe scratch: lr 0.00354, weight decay 0.01, one-cycle, AdamW eps 1e-08, '
            'gradient norm clipped at 1, crops of 0.75 to 1 of the area') in result.stdout
    run = next((tmp_path / 'logs' / 'imagenet').iterdir())
    configs = yaml.safe_load((run / 'configs.yaml').read_text())
    assert configs['recipe']['computed'] == 'scratch'
    # Batch 16: 0.01 at batch 128, times the root of 16 / 128
    assert configs['lr']['computed'] == pytest.approx(0.01 / math.sqrt(8))
    assert configs['weight_decay']['computed'] == 0.01
    assert configs['scale']['computed'] == 0.75
    summary = json.loads((run / 'summary.json').read_text())
    expected = {**SCRATCH, 'weight_decay': 0.01}
    assert summary['recipe'] == {'name': 'scratch', 'lr': summary['recipe']['lr'],
                                 **{k: expected[k] for k in imagenet.RECIPE_KEYS[1:]}}
    assert summary['recipe']['lr'] == pytest.approx(0.01 / math.sqrt(8))
    assert summary['train_transform'][0].startswith(
        'RandomResizedCrop(size=(32, 32), scale=(0.75, 1.0)')
