"""Tests of the annotated model in `labml_convmixer/model.py`."""

import ast
import copy
import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from labml_convmixer import convmixer
from labml_convmixer.model import (ClassificationHead, ConvMixer, ConvMixerLayer, DepthWiseConv2d,
                                   PatchEmbeddings, clone_module_list)
from labml_convmixer.variations import conv_mixer_layer, get_activation

MODEL_FILE = Path(__file__).resolve().parents[1] / 'labml_convmixer' / 'model.py'


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('d_model,patch_size,in_channels,size', [
    (8, 1, 3, (5, 7)), (16, 2, 3, (32, 32)), (12, 7, 1, (224, 100)), (4, 4, 5, (9, 13)),
])
def test_patch_embeddings_shape(d_model, patch_size, in_channels, size):
    emb = PatchEmbeddings(d_model, patch_size, in_channels)
    x = torch.randn(2, in_channels, *size)
    y = emb(x)
    assert y.shape == (2, d_model, size[0] // patch_size, size[1] // patch_size)


@pytest.mark.parametrize('kernel_size', [1, 2, 3, 4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize('size', [(1, 1), (3, 5), (8, 8)])
def test_layer_keeps_spatial_size(kernel_size, size):
    layer = ConvMixerLayer(6, kernel_size)
    x = torch.randn(2, 6, *size)
    assert layer(x).shape == x.shape


@pytest.mark.filterwarnings('ignore:Using padding=.same.')
@pytest.mark.parametrize('kernel_size', [2, 4, 6])
def test_even_kernel_pads_like_same(kernel_size):
    # Our explicit asymmetric padding must equal PyTorch's own `padding='same'`.
    ours = DepthWiseConv2d(3, kernel_size)
    reference = nn.Conv2d(3, 3, kernel_size, groups=3, padding='same')
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 9, 10)
    torch.testing.assert_close(ours(x), reference(x))


def test_classification_head_shapes():
    x = torch.randn(3, 10, 4, 5)
    assert ClassificationHead(10, 7)(x).shape == (3, 7)
    features = ClassificationHead(10, 0)(x)
    torch.testing.assert_close(features, x.mean((2, 3)))


@pytest.mark.parametrize('activation,pre_act,bn_first', list(itertools.product(
    ['gelu', 'relu', 'mish', 'silu', nn.Tanh, lambda: nn.LeakyReLU(0.1)], [False, True], [False, True])))
def test_every_option_runs_forward_and_backward(activation, pre_act, bn_first):
    model = convmixer(8, 2, kernel_size=4, patch_size=2, n_classes=5, in_channels=3,
                      activation=activation, pre_act=pre_act, bn_first=bn_first)
    x = torch.randn(2, 3, 10, 10)
    y = model(x)
    assert y.shape == (2, 5)
    y.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_option_orders_differ():
    # The three orderings are different functions of the same weights.
    x = torch.randn(2, 4, 6, 6)
    torch.manual_seed(0)
    base = ConvMixerLayer(4, 3)
    outputs = []
    for pre_act, bn_first in [(False, False), (False, True), (True, False), (True, True)]:
        layer = conv_mixer_layer(4, 3, nn.GELU, pre_act=pre_act, bn_first=bn_first)
        layer.load_state_dict(base.state_dict())
        outputs.append(layer(x))
    for a, b in itertools.combinations(outputs, 2):
        assert not torch.allclose(a, b)


def test_layer_computes_the_paper_equations():
    torch.manual_seed(0)
    layer = ConvMixerLayer(4, 3).eval()
    for norm in (layer.norm1, layer.norm2):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    z = torch.randn(2, 4, 6, 6)
    gelu = nn.functional.gelu
    dw = layer.depth_wise_conv
    z1 = layer.norm1(gelu(nn.functional.conv2d(z, dw.weight, dw.bias, padding=1, groups=4))) + z
    expected = layer.norm2(gelu(layer.point_wise_conv(z1)))
    torch.testing.assert_close(layer(z), expected)


def test_activation_belongs_to_each_block():
    model = convmixer(8, 3, 3, 2, 10, activation='relu')
    acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.GELU))]
    # one in the patch embeddings, two in every layer
    assert len(acts) == 1 + 2 * 3
    assert all(isinstance(a, nn.ReLU) for a in acts)
    # each layer has its own activation modules, not shared ones
    assert len({id(a) for a in acts}) == len(acts)


@pytest.mark.parametrize('name,args,expected', [
    ('convmixer_1536_20', dict(d_model=1536, n_layers=20, kernel_size=9, patch_size=7), 51_625_960),
    ('convmixer_768_32', dict(d_model=768, n_layers=32, kernel_size=7, patch_size=7,
                              activation='relu'), 21_110_248),
    ('convmixer_1024_20_ks9_p14', dict(d_model=1024, n_layers=20, kernel_size=9, patch_size=14),
     24_383_464),
    ('convmixer_256_8', dict(d_model=256, n_layers=8, kernel_size=5, patch_size=2, n_classes=10),
     594_186),
])
def test_parameter_counts(name, args, expected):
    assert n_params(convmixer(**args)) == expected


def test_cloned_layers_are_initialised_independently():
    torch.manual_seed(0)
    layers = clone_module_list(ConvMixerLayer(16, 5), 4)
    weights = [layer.depth_wise_conv.weight for layer in layers]
    point = [layer.point_wise_conv.weight for layer in layers]
    for a, b in itertools.combinations(weights + point, 2):
        if a.shape == b.shape:
            assert not torch.equal(a, b)
    # but they share the structure, and they are separate parameters
    assert all(layer.depth_wise_conv.kernel_size == (5, 5) for layer in layers)
    assert len({id(p) for layer in layers for p in layer.parameters()}) == \
           sum(len(list(layer.parameters())) for layer in layers)
    # and the fresh weights come from the default initialisation: uniform within
    # $\pm 1/\sqrt{\text{fan-in}}$, here fan-in 16, and spread over that range
    for p in point:
        assert p.abs().max().item() <= 1.0 / 4 + 1e-6
        assert p.std().item() > 0.1


def test_cloned_layers_in_model_differ():
    model = convmixer(8, 3, 3, 2, 10)
    w = [layer.depth_wise_conv.weight for layer in model.conv_mixer_layers]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])


def test_features_head_and_pre_logits():
    model = convmixer(8, 2, 3, 2, 6).eval()
    x = torch.randn(2, 3, 12, 12)
    features = model.forward_features(x)
    assert features.shape == (2, 8, 6, 6)
    torch.testing.assert_close(model.forward_head(features), model(x))
    torch.testing.assert_close(model.forward_head(features, pre_logits=True), features.mean((2, 3)))


def test_features_only_model():
    model = convmixer(8, 2, 3, 2, n_classes=0)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 8)


def test_reset_classifier():
    model = convmixer(8, 2, 3, 2, 6)
    old = model.classification
    model.reset_classifier(3)
    assert model.classification is not old
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3)
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 8)


def test_forward_intermediates():
    model = convmixer(8, 4, 3, 2, 6).eval()
    x = torch.randn(2, 3, 8, 8)
    outs = model.forward_intermediates(x, [0, -1, 2], intermediates_only=True)
    assert len(outs) == 3 and all(o.shape == (2, 8, 4, 4) for o in outs)
    torch.testing.assert_close(outs[-1], model.forward_features(x))
    h = model.patch_emb(x)
    h = model.conv_mixer_layers[0](h)
    torch.testing.assert_close(outs[0], h)
    with pytest.raises(ValueError, match='out of range'):
        model.forward_intermediates(x, [4])
    with pytest.raises(ValueError, match='at least one'):
        model.forward_intermediates(x, [])


def test_gradient_checkpointing_gives_the_same_gradients_and_running_statistics():
    torch.manual_seed(0)
    plain = convmixer(8, 3, 3, 2, 4)
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 8, 8)
    for model in (plain, checkpointed):
        for _ in range(2):
            model(x).square().sum().backward()
    for a, b in zip(plain.parameters(), checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    # The recomputation in the backward pass must not update batch norm's
    # running statistics a second time, nor count the batch twice
    for (name, a), (_, b) in zip(plain.named_buffers(), checkpointed.named_buffers()):
        torch.testing.assert_close(a, b, msg=name)
    assert checkpointed.conv_mixer_layers[0].norm1.num_batches_tracked.item() == 2


@pytest.mark.parametrize('x,message', [
    (torch.randn(3, 32, 32), 'dimensions'),
    (torch.randn(1, 1, 3, 32, 32), 'dimensions'),
    (torch.randn(1, 4, 32, 32), 'input channels'),
    (torch.randn(1, 3, 1, 32), 'smaller than one 2x2 patch'),
])
def test_bad_input_is_a_clear_value_error(x, message):
    model = convmixer(8, 1, 3, 2, 10)
    with pytest.raises(ValueError, match=message):
        model(x)


@pytest.mark.parametrize('build,message', [
    (lambda: convmixer(0, 1, patch_size=2), 'd_model'),
    (lambda: convmixer(8, 1, patch_size=-1), 'patch_size'),
    (lambda: convmixer(8, 1, patch_size=2, in_channels=0), 'in_channels'),
    (lambda: convmixer(8, 1, kernel_size=0), 'kernel_size'),
    (lambda: convmixer(8, 1, kernel_size=2.5), 'kernel_size'),
    (lambda: convmixer(8, 1, n_classes=-1), 'n_classes'),
    (lambda: convmixer(8, 0), 'n_layers'),
    (lambda: convmixer(8, 2, activation='swish2'), 'unknown activation'),
])
def test_bad_constructor_arguments(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_get_activation():
    assert get_activation('ReLU') is nn.ReLU
    assert get_activation(nn.Mish) is nn.Mish
    with pytest.raises(ValueError):
        get_activation(3)


def test_model_file_imports_only_torch_and_the_standard_library():
    tree = ast.parse(MODEL_FILE.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split('.')[0])
    allowed = set(sys.stdlib_module_names) | {'torch'}
    assert roots <= allowed, roots - allowed


def test_copied_model_file_works_alone(tmp_path):
    # A student copies the one file into their own folder and uses it there,
    # without this package installed or importable.
    shutil.copy(MODEL_FILE, tmp_path / 'convmixer.py')
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        # make the package unimportable, so a hidden dependency on it would fail
        "sys.modules['labml_convmixer'] = None\n"
        "import torch, convmixer\n"
        "m = convmixer.convmixer(16, 2, kernel_size=5, patch_size=2, n_classes=10)\n"
        "print(tuple(m(torch.randn(2, 3, 32, 32)).shape))\n"
    )
    # Run in an empty working directory, with `-I` so the repository is not on the path.
    result = subprocess.run([sys.executable, '-I', '-c', script], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '(2, 10)'


def test_conv_mixer_composes_given_parts():
    layer = ConvMixerLayer(8, 3, activation=get_activation('relu'))
    emb = PatchEmbeddings(8, 2)
    head = ClassificationHead(8, 4)
    model = ConvMixer(layer, 3, emb, head)
    assert model.patch_emb is emb and model.classification is head
    assert len(model.conv_mixer_layers) == 3
    assert all(isinstance(l.act1, nn.ReLU) for l in model.conv_mixer_layers)
    assert all(l is not layer for l in model.conv_mixer_layers)
