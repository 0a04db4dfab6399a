"""
Named models and pretrained-weight interop: parameter counts, equivalence with
timm through the timm, official and mmpretrain layouts, our → timm export, and
mismatch reports. Weight files and the download cache: `test_download.py`.
"""
import argparse
import functools
import urllib.request

import pytest
import safetensors.torch
import timm
import torch
from torch import nn

from labml_convmixer import convmixer
from labml_convmixer.models import MODELS, create_model, list_models
from labml_convmixer.pretrained import (CheckpointMismatchError, convert_state_dict,
                                        detect_layout, load_pretrained, read_checkpoint, summarize_keys,
                                        to_timm_state_dict)

IMAGENET_MODELS = ['convmixer_1536_20', 'convmixer_768_32', 'convmixer_1024_20_ks9_p14']


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomize_batch_norms(model: nn.Module, seed: int = 0):
    """Non-trivial running statistics and affine parameters, so that a wrongly
    loaded normalization changes the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=generator) * 1.5 + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.2)
                module.num_batches_tracked.fill_(1234)
    return model


# The test's own renaming from timm's keys, written independently of the package.
def timm_to_official(state_dict, depth):
    out = {}
    for key, value in state_dict.items():
        if key.startswith('stem.'):
            key = key[len('stem.'):]
        elif key.startswith('blocks.'):
            index, rest = key[len('blocks.'):].split('.', 1)
            key = f'{int(index) + 3}.{rest}'
        elif key.startswith('head.'):
            key = f'{depth + 5}.{key[len("head."):]}'
        out[key] = value
    return out


def timm_to_mmpretrain(state_dict):
    out = {}
    for key, value in state_dict.items():
        for old, new in (('stem.', 'backbone.stem.'), ('blocks.', 'backbone.stages.'), ('head.', 'head.fc.')):
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def sequential_convmixer(dim, depth, kernel_size, patch_size, n_classes, act=nn.GELU):
    """The model as one nn.Sequential, as the paper's listing builds it."""
    blocks = [nn.Sequential(
        Residual(nn.Sequential(nn.Conv2d(dim, dim, kernel_size, groups=dim, padding='same'),
                               act(), nn.BatchNorm2d(dim))),
        nn.Conv2d(dim, dim, 1), act(), nn.BatchNorm2d(dim)) for _ in range(depth)]
    return nn.Sequential(nn.Conv2d(3, dim, patch_size, stride=patch_size), act(), nn.BatchNorm2d(dim),
                         *blocks, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(dim, n_classes))


@functools.lru_cache(maxsize=None)
def timm_reference(name):
    """A timm model with non-trivial weights, an input and its output."""
    torch.manual_seed(0)
    model = randomize_batch_norms(timm.create_model(name, pretrained=False)).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    return model, x, y


def assert_matches_timm(name, model):
    _, x, y = timm_reference(name)
    model.eval()
    with torch.no_grad():
        ours = model(x)
    assert ours.shape == y.shape == (2, 1000)
    assert (ours - y).abs().max().item() <= 1e-5


def no_network(*args, **kwargs):
    raise AssertionError('the network must not be used')


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """torch's hub cache in a temporary folder; returns its `checkpoints/` folder."""
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    checkpoints = tmp_path / 'checkpoints'
    checkpoints.mkdir()
    return checkpoints


def save_official_checkpoint(name, path):
    """A checkpoint as the official training script writes it: wrapped, with arguments."""
    spec = MODELS[name]
    timm_model, _, _ = timm_reference(name)
    torch.save({'epoch': 149, 'arch': name,
                'state_dict': timm_to_official(timm_model.state_dict(), spec.n_layers),
                'optimizer': {'state': {}, 'param_groups': [{'lr': 0.01}]},
                'args': argparse.Namespace(model=name, lr=0.01, mixup=0.5, aa='rand-m9-mstd0.5'),
                'version': 2, 'metric': 80.0}, path)


# ## Named models

@pytest.mark.parametrize('name,count', [('convmixer_1536_20', 51_625_960), ('convmixer_768_32', 21_110_248),
                                        ('convmixer_1024_20_ks9_p14', 24_383_464), ('convmixer_256_8', 594_186)])
def test_parameter_counts(name, count):
    # On the meta device: shapes only, no memory and no initialisation
    with torch.device('meta'):
        model = create_model(name)
    assert n_parameters(model) == count


def test_list_models():
    assert list_models() == ['convmixer_1024_20_ks9_p14', 'convmixer_1536_20', 'convmixer_256_8',
                             'convmixer_768_32']
    assert list_models(pretrained=True) == sorted(IMAGENET_MODELS)


def test_variant_hyper_parameters():
    with torch.device('meta'):
        model = create_model('convmixer_768_32')
    assert isinstance(model.patch_emb.act, nn.ReLU)
    assert isinstance(model.conv_mixer_layers[31].act2, nn.ReLU)
    cifar = create_model('convmixer_256_8')
    assert isinstance(cifar.patch_emb.act, nn.GELU)
    assert cifar.conv_mixer_layers[0].depth_wise_conv.kernel_size == (5, 5)
    assert cifar.patch_emb.conv.stride == (2, 2)
    assert cifar(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_overrides():
    model = create_model('convmixer_256_8', n_classes=100, kernel_size=4, activation='relu', in_channels=1)
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 100)
    assert isinstance(model.conv_mixer_layers[0].act1, nn.ReLU)


def test_unknown_name_and_option():
    with pytest.raises(ValueError, match=r"unknown model 'convmixer_512'.*convmixer_1536_20.*convmixer_256_8"):
        create_model('convmixer_512')
    with pytest.raises(ValueError, match=r"unknown option act for create_model: choose from .*activation"):
        create_model('convmixer_256_8', act='relu')


def test_no_published_weights(hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    with pytest.raises(ValueError, match='convmixer_256_8 has no published weights'):
        create_model('convmixer_256_8', pretrained=True)


@pytest.mark.parametrize('option,value', [('activation', 'gelu'), ('activation', nn.GELU), ('pre_act', True),
                                          ('bn_first', True), ('kernel_size', 9), ('n_layers', 20)])
def test_pretrained_refuses_options_that_change_the_weights_meaning(option, value, hub_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_network)
    with pytest.raises(ValueError, match=f'convmixer_768_32 was trained with {option}=.*pretrained=False'):
        create_model('convmixer_768_32', pretrained=True, **{option: value})


def test_relu_weights_in_a_gelu_model_load_but_compute_something_else():
    # Why the activation belongs to the variant: strict loading cannot catch it.
    timm_model, x, y = timm_reference('convmixer_768_32')
    gelu_model = convmixer(768, 32, kernel_size=7, patch_size=7, activation='gelu').eval()
    load_pretrained(gelu_model, timm_model.state_dict())
    with torch.no_grad():
        assert (gelu_model(x) - y).abs().max().item() > 1e-2


# ## Equivalence with timm, through every layout

@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_timm_layout(name):
    timm_model, _, _ = timm_reference(name)
    assert detect_layout(timm_model.state_dict()) == 'timm'
    assert_matches_timm(name, load_pretrained(create_model(name), timm_model.state_dict()))


@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_official_layout_file(name, tmp_path):
    path = tmp_path / f'{name}.pth.tar'
    save_official_checkpoint(name, path)
    assert detect_layout(read_checkpoint(path)) == 'official'
    assert_matches_timm(name, load_pretrained(create_model(name), path))


@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_mmpretrain_layout_wrapped_and_prefixed(name):
    timm_model, _, _ = timm_reference(name)
    mm = timm_to_mmpretrain(timm_model.state_dict())
    checkpoint = {'meta': {'epoch': 300}, 'state_dict': {'module.' + k: v for k, v in mm.items()}}
    assert_matches_timm(name, load_pretrained(create_model(name), checkpoint))


@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_our_weights_load_into_timm(name):
    timm_model, x, _ = timm_reference(name)
    ours = create_model(name)
    randomize_batch_norms(ours, seed=7).eval()
    fresh_timm = timm.create_model(name, pretrained=False).eval()
    fresh_timm.load_state_dict(to_timm_state_dict(ours), strict=True)
    with torch.no_grad():
        expected = ours(x)
        assert (fresh_timm(x) - expected).abs().max().item() <= 1e-5
        # and back again
        back = load_pretrained(create_model(name), to_timm_state_dict(ours)).eval()
        assert (back(x) - expected).abs().max().item() <= 1e-5


def test_official_layout_is_the_sequential_model():
    # Our official-layout names are exactly those of the paper's nn.Sequential model,
    # and the weights mean the same there.
    torch.manual_seed(0)
    ours = randomize_batch_norms(convmixer(32, 3, kernel_size=4, patch_size=4, n_classes=5,
                                           activation='relu')).eval()
    sequential = sequential_convmixer(32, 3, 4, 4, 5, act=nn.ReLU).eval()
    official = convert_state_dict(ours.state_dict(), to='official')
    assert list(official) == list(sequential.state_dict())
    sequential.load_state_dict(official, strict=True)
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        assert (sequential(x) - ours(x)).abs().max().item() <= 1e-5
    # The test's own renaming agrees with the package's
    assert list(timm_to_official(convert_state_dict(official, to='timm'), 3)) == list(official)


def test_conversions_round_trip():
    state_dict = create_model('convmixer_256_8').state_dict()
    for layout in ('official', 'timm', 'mmpretrain'):
        converted = convert_state_dict(state_dict, to=layout)
        assert detect_layout(converted) == layout
        back = convert_state_dict(converted, to='ours')
        assert list(back) == list(state_dict)
        assert all(back[k] is state_dict[k] for k in state_dict)
    assert set(convert_state_dict(state_dict, to='mmpretrain')) >= {'backbone.stem.0.weight', 'head.fc.bias',
                                                                    'backbone.stages.7.3.running_var'}
    assert '13.weight' in convert_state_dict(state_dict, to='official')  # head at d + 5
    with pytest.raises(ValueError, match="unknown layout 'keras'"):
        convert_state_dict(state_dict, to='keras')


def test_safetensors_file(tmp_path):
    timm_model, _, _ = timm_reference('convmixer_1024_20_ks9_p14')
    path = tmp_path / 'model.safetensors'
    safetensors.torch.save_file(timm_model.state_dict(), str(path))
    assert_matches_timm('convmixer_1024_20_ks9_p14',
                        load_pretrained(create_model('convmixer_1024_20_ks9_p14'), path))


def test_load_head_false_keeps_the_models_classifier():
    timm_model, _, _ = timm_reference('convmixer_1024_20_ks9_p14')
    model = create_model('convmixer_1024_20_ks9_p14', n_classes=10)
    head = model.classification.linear.weight.clone()
    with pytest.raises(CheckpointMismatchError, match='load_head=False'):
        load_pretrained(model, timm_model.state_dict())
    load_pretrained(model, timm_model.state_dict(), load_head=False)
    assert torch.equal(model.classification.linear.weight, head)
    assert torch.equal(model.conv_mixer_layers[19].norm2.running_var, timm_model.blocks[19][3].running_var)


# ## Mismatched checkpoints

def small_timm_layout(d_model, n_layers, **kwargs):
    return convert_state_dict(convmixer(d_model, n_layers, kernel_size=3, patch_size=4, n_classes=5,
                                        **kwargs).state_dict(), to='timm')


def test_wrong_depth_message():
    model = convmixer(16, 2, kernel_size=3, patch_size=4, n_classes=5)
    with pytest.raises(CheckpointMismatchError) as error:
        load_pretrained(model, {'state_dict': small_timm_layout(16, 6)})
    message = str(error.value)
    assert message.startswith('the checkpoint (timm layout) does not fit the model: it holds ConvMixer-16/6')
    assert 'the model is ConvMixer-16/2' in message
    assert 'unexpected in the checkpoint (56): conv_mixer_layers.{2..5}.* (14 tensors each)' in message
    assert 'missing' not in message and 'shape conflicts' not in message
    assert len(message.splitlines()) == 3


def test_wrong_width_message():
    model = convmixer(16, 2, kernel_size=3, patch_size=4, n_classes=5)
    with pytest.raises(CheckpointMismatchError) as error:
        load_pretrained(model, small_timm_layout(24, 2))
    message = str(error.value)
    assert 'ConvMixer-24/2' in message and 'the model is ConvMixer-16/2' in message
    assert 'shape conflicts (31): ' in message
    assert '(5, 24) in the checkpoint, (5, 16) in the model: classification.linear.weight' in message
    assert '(24,) in the checkpoint, (16,) in the model: conv_mixer_layers.{0..1}.* (10 tensors each)' in message
    assert '(24, 24, 1, 1) in the checkpoint, (16, 16, 1, 1) in the model: ' \
           'conv_mixer_layers.{0..1}.point_wise_conv.weight' in message
    assert len(message) < 1500


def test_layout_without_activation_modules_message():
    # A Sequential model built without activation modules numbers its parts
    # differently: the keys look official but are not.
    blocks = [nn.Sequential(Residual(nn.Sequential(nn.Conv2d(16, 16, 3, groups=16, padding=1),
                                                   nn.BatchNorm2d(16))),
                            nn.Conv2d(16, 16, 1), nn.BatchNorm2d(16)) for _ in range(2)]
    sequential = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), nn.BatchNorm2d(16), *blocks,
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))
    model = convmixer(16, 2, kernel_size=3, patch_size=4, n_classes=5)
    with pytest.raises(CheckpointMismatchError) as error:
        load_pretrained(model, sequential.state_dict())
    message = str(error.value)
    assert '(official layout)' in message
    assert 'keys that are not ConvMixer tensors in the official layout' in message
    assert '1.* (5 tensors)' in message  # the stem's BatchNorm at position 1
    assert 'missing from the checkpoint' in message and 'patch_emb.norm.* (5 tensors)' in message


def test_unknown_and_missing_keys_message():
    state_dict = small_timm_layout(16, 2)
    state_dict['pos_embed.weight'] = torch.zeros(3)
    del state_dict['blocks.1.3.running_var']
    model = convmixer(16, 2, kernel_size=3, patch_size=4, n_classes=5)
    with pytest.raises(CheckpointMismatchError) as error:
        load_pretrained(model, state_dict)
    message = str(error.value)
    assert 'keys that are not ConvMixer tensors in the timm layout (1): pos_embed.weight' in message
    assert 'missing from the checkpoint (1): conv_mixer_layers.1.norm2.running_var' in message
    assert 'is it a complete ConvMixer checkpoint?' in message


def test_unrecognised_layout_and_no_weights():
    with pytest.raises(ValueError, match=r'not a ConvMixer state dict in any known layout .*encoder\.weight'):
        load_pretrained(create_model('convmixer_256_8'), {'encoder.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match=r"found no weights in the checkpoint.*epoch"):
        load_pretrained(create_model('convmixer_256_8'), {'epoch': 3, 'optimizer': {}})


def test_summarize_keys_folds_long_lists():
    keys = [f'conv_mixer_layers.{i}.norm1.{t}' for i in range(40) for t in ('weight', 'bias', 'running_mean')]
    assert summarize_keys(keys) == 'conv_mixer_layers.{0..39}.* (3 tensors each)'
    assert summarize_keys([f'x.{i}.w' for i in (1, 2, 3, 7, 9, 10)]) == 'x.{1..3,7,9..10}.w'
    many = [f'a{i}.weight' for i in range(10)]
    assert summarize_keys(many, limit=3).endswith('... 7 more')
