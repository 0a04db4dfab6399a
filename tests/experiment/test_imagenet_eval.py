"""
Evaluation with the ImageNet experiment: a model whose weights are set so that
the answer is known gets exactly that answer, top-5 is counted right, and
starting weights that cannot be used (another number of classes, a text file,
no network for the published ones, a broken image) stop with one line.
"""

import json
import sys
import time
import types
import urllib.error
import urllib.request

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from cifar10_testdata import ROOT
from imagefolder_testdata import run_imagenet, write_colour_folder, write_folder

sys.path.insert(0, str(ROOT))
from experiments import imagenet  # noqa: E402
from experiments.datasets import imagefolder_data  # noqa: E402
from experiments.runner import metrics  # noqa: E402
from experiments.runner.errors import UserError  # noqa: E402
from experiments.runner.trainer import RunMode  # noqa: E402
from labml_convmixer import convmixer  # noqa: E402
from labml_convmixer.pretrained import to_timm_state_dict  # noqa: E402

COLOUR_MODEL = ['--d-model', '3', '--n-layers', '1', '--kernel-size', '3',
                '--patch-size', '4', '--activation', 'relu', '--image-size', '32']


def colour_model() -> torch.nn.Module:
    """
    ConvMixer-3/1 that predicts the brightest colour channel. The patch
    embedding averages each channel over the patch and adds 10, so the values
    stay positive and ReLU passes them; batch norms are identities; the
    depth-wise convolution gives 0 (the residual passes $x$), the point-wise one
    is the identity; the classifier maps R, G, B to the classes, sorted by
    name: blue, green, red.
    """
    model = convmixer(3, 1, kernel_size=3, patch_size=4, n_classes=3, activation='relu')
    state = model.state_dict()
    for key, value in state.items():
        is_one = 'norm' in key and key.endswith(('.weight', '.running_var'))
        value.fill_(1.0 if is_one else 0.0)
    for c in range(3):
        state['patch_emb.conv.weight'][c, c] = 1 / 16
        state['conv_mixer_layers.0.point_wise_conv.weight'][c, c] = 1.0
        state['classification.linear.weight'][c, 2 - c] = 1.0
    state['patch_emb.conv.bias'].fill_(10.0)
    model.load_state_dict(state)
    return model.eval()


def test_known_model_gets_the_known_answer(tmp_path):
    # 5 blue, 4 green and 6 red images, and 3 green ones filed under red
    data = write_colour_folder(tmp_path / 'data', {'blue': 5, 'green': 4, 'red': 6},
                               misfiled=3)
    weights = tmp_path / 'colours.pth'
    torch.save({'state_dict': to_timm_state_dict(colour_model()), 'epoch': 9}, weights)
    result = run_imagenet('--data-dir', data, '--logs-dir', tmp_path / 'logs',
                          '--weights', weights, '--eval-only', '--num-workers', '1',
                          *COLOUR_MODEL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary_file = next(tmp_path.glob('logs/imagenet/*/summary.json'))
    summary = json.loads(summary_file.read_text())
    assert summary['valid_images'] == 18
    assert summary['valid_accuracy'] == pytest.approx(15 / 18)
    assert summary['per_class_accuracy'] == pytest.approx({'blue': 1.0, 'green': 1.0,
                                                           'red': 6 / 9})
    # Three classes: the top five always hold the label
    assert summary['valid_top5'] == 1.0
    assert summary['epochs'] == 0 and summary['classes'] == ['blue', 'green', 'red']
    assert summary['transform'][:2] == [
        'Resize(size=33, interpolation=bicubic, max_size=None, antialias=True)',
        'CenterCrop(size=(32, 32))']
    assert 'train_transform' not in summary
    assert 'evaluated 18/18 images' in result.stdout
    assert 'top-1  83.33%' in result.stdout
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith('top-1 83.33%  top-5 100.00%  on 18 images; summary in ')
    assert '\r' not in result.stdout


def test_top5_counts_the_five_highest_logits():
    # A model that ignores its input: class 0 scores highest, then 1, ..., 6
    model = convmixer(4, 1, kernel_size=3, patch_size=4, n_classes=7)
    with torch.no_grad():
        model.classification.linear.weight.zero_()
        model.classification.linear.bias.copy_(torch.arange(7, 0, -1).float())
    labels = torch.tensor([0] * 2 + [1] * 3 + [4] + [5] * 2 + [6] * 4)
    loader = DataLoader(TensorDataset(torch.randn(12, 3, 16, 16), labels), batch_size=5)
    evaluation = metrics.evaluate(model, loader, [str(i) for i in range(7)],
                                  device=torch.device('cpu'), precision='fp32',
                                  channels_last=False)
    numbers = evaluation.numbers('valid', [str(i) for i in range(7)])
    assert numbers['valid_accuracy'] == pytest.approx(2 / 12)
    assert numbers['valid_top5'] == pytest.approx(6 / 12)
    assert numbers['valid_images'] == 12
    per_class = numbers['per_class_accuracy']
    assert per_class == {'0': 1.0, **{str(i): 0.0 for i in range(1, 7)}}


# ## Starting weights that cannot be used

def configs(tmp_path, evaluating=True, **settings):
    """What `starting_model` reads of the experiment's configs."""
    root = write_folder(tmp_path / 'data', n_train=1, n_val=1, classes=['a', 'b', 'c'])
    values = dict(model_name='', pretrained=False, weights='', d_model=8, n_layers=1,
                  kernel_size=3, patch_size=4, activation='gelu', seed=0,
                  data=imagefolder_data.read_image_folder(root),
                  run_mode=RunMode(evaluating=evaluating))
    return types.SimpleNamespace(**{**values, **settings})


def refusal(c) -> str:
    start = time.monotonic()
    with pytest.raises(UserError) as error:
        imagenet.starting_model(c)
    assert time.monotonic() - start < 15
    assert '\n' not in str(error.value)
    return str(error.value)


def test_weights_for_another_number_of_classes(tmp_path):
    path = tmp_path / 'ten.pth'
    ten = convmixer(8, 1, kernel_size=3, patch_size=4, n_classes=10)
    torch.save(ten.state_dict(), path)
    c = configs(tmp_path, weights=str(path))
    assert refusal(c) == (f"{path} classify 10 classes, but {c.data.root / 'val'} has "
                          f"3 class folders: evaluating needs weights for the folder's "
                          f"classes (drop --eval-only to fine-tune them on it)")
    # Fine-tuning takes the rest of the weights and a new classifier
    c.run_mode = RunMode(evaluating=False)
    model = imagenet.starting_model(c)
    assert model.classification.n_classes == 3
    loaded = torch.load(path, weights_only=True)
    assert torch.equal(model.state_dict()['patch_emb.conv.weight'],
                       loaded['patch_emb.conv.weight'])


def test_weights_of_another_model_or_not_weights_at_all(tmp_path):
    path = tmp_path / 'deeper.pth'
    deeper = convmixer(8, 2, kernel_size=3, patch_size=4, n_classes=3)
    torch.save(deeper.state_dict(), path)
    message = refusal(configs(tmp_path, weights=str(path)))
    assert message.startswith(f'{path}: the checkpoint (ours layout) does not fit the '
                              f'model: it holds ConvMixer-8/2, k3, p4')
    text = tmp_path / 'notes.txt'
    text.write_text('hello, these are my notes')
    assert refusal(configs(tmp_path, weights=str(text))).startswith(
        f"{text} is not a checkpoint but a text file that begins "
        f"'hello, these are my notes'")


def test_pretrained_offline_says_what_to_download_and_where(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError(OSError(101, 'Network is unreachable'))

    monkeypatch.setattr(urllib.request, 'urlopen', unreachable)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    message = refusal(configs(tmp_path, model_name='convmixer_768_32', pretrained=True))
    target = tmp_path / 'hub' / 'checkpoints' / 'convmixer_768_32_ks7_p7_relu.pth.tar'
    url = ('https://github.com/tmp-iclr/convmixer/releases/download/v1.0/'
           'convmixer_768_32_ks7_p7_relu.pth.tar')
    assert message.endswith(f'download {url} and save it as {target}')


def test_a_broken_image_stops_evaluation_with_one_line(tmp_path):
    data = write_colour_folder(tmp_path / 'data', {'blue': 2, 'green': 2, 'red': 2},
                               misfiled=0)
    broken = data / 'val' / 'green' / '001.png'
    broken.write_bytes(b'\x89PNG\r\n\x1a\n not really')
    weights = tmp_path / 'colours.pth'
    torch.save(colour_model().state_dict(), weights)
    start = time.monotonic()
    result = run_imagenet('--data-dir', data, '--logs-dir', tmp_path / 'logs',
                          '--weights', weights, '--eval-only', '--num-workers', '1',
                          '--batch-size', '2', *COLOUR_MODEL)
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f'imagenet.py: error: {broken}: cannot read this image (not in an image '
        f'format PIL knows); delete or replace the file, then start again or '
        f'--resume RUN_UUID']


def test_weights_holding_nan_are_refused_with_the_tensor_name(tmp_path):
    path = tmp_path / 'diverged.pth'
    model = convmixer(8, 1, kernel_size=3, patch_size=4, n_classes=3)
    weights = model.state_dict()
    weights['patch_emb.conv.weight'][0] = float('nan')
    torch.save(weights, path)
    assert refusal(configs(tmp_path, weights=str(path))) == (
        f"{path}: tensor patch_emb.conv.weight holds NaN or infinite values (a diverged "
        f"run?); load_pretrained(..., allow_non_finite=True) loads them")
