"""
`filters.png` (experiments/filters.py): the patch embedding's kernels and the
depth-wise kernels of three layers, drawn from a tiny model.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.filters import draw_filters, kernel_mosaic, layers_to_draw, patch_mosaic, signed_unit
from labml_convmixer.model import convmixer
from labml_convmixer.pretrained import to_timm_state_dict

ROOT = Path(__file__).resolve().parents[1]


def tiny_model():
    torch.manual_seed(0)
    return convmixer(16, 3, kernel_size=3, patch_size=2, n_classes=4)


def test_each_kernel_is_scaled_with_zero_in_the_middle():
    kernels = torch.tensor([[[1.0, -2.0], [0.0, 0.5]], [[0.001, 0.0], [0.0, -0.001]]])
    scaled = signed_unit(kernels)
    assert scaled.shape == kernels.shape
    # The largest weight (by size) reaches 0 or 1, zero is 0.5, the sign is kept
    assert scaled[0].tolist() == [[0.75, 0.0], [0.5, 0.625]]
    # A kernel of tiny weights is as readable as a strong one
    assert scaled[1].tolist() == [[1.0, 0.5], [0.5, 0.0]]


def test_first_middle_and_last_layer():
    assert layers_to_draw(8) == [0, 4, 7]
    assert layers_to_draw(20) == [0, 10, 19]
    assert layers_to_draw(2) == [0, 1]
    assert layers_to_draw(1) == [0]


def test_patch_kernels_are_their_colours():
    weight = torch.zeros(4, 3, 2, 2)
    weight[0, 0] = 1.0  # responds to red
    weight[1, 2] = -1.0  # responds to the absence of blue
    picture = patch_mosaic(weight)  # 2 x 2 kernels of 2 x 2 pixels, 1 pixel apart
    assert picture.shape == (3, 7, 7)
    first, second = picture[:, 1, 1], picture[:, 1, 4]
    assert first.tolist() == [1.0, 0.5, 0.5]
    assert second.tolist() == [0.5, 0.5, 0.0]
    # Grey images: one input channel is drawn in grey
    grey = patch_mosaic(torch.ones(1, 1, 2, 2))
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_depth_wise_kernels_red_positive_blue_negative():
    from matplotlib import colormaps

    weight = torch.zeros(2, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0
    weight[1, 0, 0, 0] = -1.0
    picture = kernel_mosaic(weight, torch.tensor([0, 1]), colormaps['RdBu_r'])
    red, blue, white = picture[:, 2, 2], picture[:, 1, 5], picture[:, 1, 1]
    assert red[0] > 0.3 > red[2] and blue[2] > 0.3 > blue[0]
    assert white.min() > 0.9


def test_draws_a_tiny_model_in_any_layout(tmp_path):
    model = tiny_model()
    draw_filters(model, tmp_path / 'filters.png')
    picture = np.asarray(Image.open(tmp_path / 'filters.png').convert('RGB'))
    # Four panels side by side: the patch embedding and layers 1, 2 and 3
    assert picture.shape[1] > 3 * picture.shape[0]
    assert picture.std() > 20
    # The same weights in timm's layout give the same picture
    draw_filters(to_timm_state_dict(model), tmp_path / 'timm.png')
    assert np.array_equal(picture, np.asarray(Image.open(tmp_path / 'timm.png').convert('RGB')))
    with pytest.raises(ValueError):
        draw_filters({'weight': torch.zeros(3)}, tmp_path / 'nothing.png')


def test_command_line_draws_a_run_checkpoint(tmp_path):
    checkpoint = tmp_path / 'checkpoint.pt'
    torch.save({'epoch': 1, 'model': tiny_model().state_dict()}, checkpoint)
    done = subprocess.run([sys.executable, str(ROOT / 'experiments' / 'filters.py'), str(checkpoint),
                           '--out', str(tmp_path / 'run.png')], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / 'run.png').size[0] > 400
    wrong = subprocess.run([sys.executable, str(ROOT / 'experiments' / 'filters.py'), 'no_such_model'],
                           capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and 'convmixer_768_32' in wrong.stderr
