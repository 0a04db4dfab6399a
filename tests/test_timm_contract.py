"""
timm's model contract on the models `convmixer()` and `create_model()` return:
the attributes, `pretrained_cfg`, TorchScript, torch.fx, torchvision's feature
extraction, and `forward_intermediates` / `prune_intermediate_layers` held
against timm's own ConvMixer on the same weights.
"""

import copy
import warnings

import pytest
import timm
import torch
from timm.models.convmixer import ConvMixer as TimmConvMixer
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from labml_convmixer import convmixer, create_model
from labml_convmixer.pretrained import convert_state_dict, to_timm_state_dict

IMAGENET_MODELS = ['convmixer_1536_20', 'convmixer_768_32', 'convmixer_1024_20_ks9_p14']
# Options of `convmixer()` whose `forward` differs: the paper's, a variation, an even kernel
BUILDS = {
    'paper': dict(kernel_size=3),
    'pre_act_bn_first': dict(kernel_size=3, activation='relu', pre_act=True, bn_first=True),
    'even_kernel': dict(kernel_size=4),
}


def small(name='paper', n_classes=5, **options):
    torch.manual_seed(0)
    model = convmixer(16, 4, patch_size=2, n_classes=n_classes, **{**BUILDS[name], **options})
    # Running statistics that show in the outputs
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


def images(batch=2, size=12, seed=1):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def scripted(model):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return torch.jit.script(model)


# ## Attributes

@pytest.mark.parametrize('build', [lambda: small(), lambda: create_model('convmixer_256_8')])
def test_attributes_stay_true_through_reset_classifier(build):
    model = build()
    width = model.patch_emb.d_model
    assert (model.num_classes, model.num_features, model.head_hidden_size) == \
           (model.classification.n_classes, width, width)
    x = images(size=32)
    for n_classes in (7, 0, 3):
        model.reset_classifier(n_classes)
        assert (model.num_classes, model.num_features, model.head_hidden_size) == (n_classes, width, width)
        # What code that sizes a new head reads is what the model gives
        out = model(x)
        assert out.shape == (2, n_classes if n_classes else model.num_features)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.head_hidden_size)
        assert isinstance(model.get_classifier(), nn.Linear if n_classes else nn.Identity)


def test_reset_classifier_keeps_mode_and_accepts_only_average_pooling():
    model = small().eval()
    model.reset_classifier(3, global_pool='avg')
    assert not model.classification.training
    with pytest.raises(ValueError, match="global_pool must be 'avg'"):
        model.reset_classifier(3, global_pool='max')
    with pytest.raises(ValueError, match='n_classes must be a non-negative integer'):
        model.reset_classifier(-1)


def test_attributes_equal_timms():
    ours = create_model('convmixer_1024_20_ks9_p14')
    theirs = timm.create_model('convmixer_1024_20_ks9_p14', pretrained=False)
    for model in (ours, theirs):
        model.reset_classifier(0)
    for name in ('num_classes', 'num_features', 'head_hidden_size'):
        assert getattr(ours, name) == getattr(theirs, name), name


# ## pretrained_cfg

@pytest.mark.parametrize('name', IMAGENET_MODELS)
def test_pretrained_cfg_equals_timms(name):
    model = create_model(name)
    ours = model.pretrained_cfg
    theirs = timm.create_model(name, pretrained=False).pretrained_cfg
    assert model.default_cfg == ours
    assert None not in ours.values()
    for field in ('architecture', 'num_classes', 'input_size', 'fixed_input_size', 'interpolation',
                  'crop_pct', 'crop_mode', 'mean', 'std', 'license'):
        assert ours[field] == theirs[field], field
    # The first convolution and the classifier are timm's, named as modules of our model
    for field in ('first_conv', 'classifier'):
        assert isinstance(model.get_submodule(ours[field]), (nn.Conv2d, nn.Linear))
        key = ours[field] + '.weight'
        renamed = convert_state_dict({key: model.state_dict()[key]}, to='timm', layout='ours')
        assert list(renamed) == [theirs[field] + '.weight'], field
    # The official file the weights come from (timm's is on the Hugging Face Hub)
    assert ours['url'].startswith('https://') and ours['url'].endswith('.pth.tar')


def test_pretrained_cfg_of_other_models():
    cifar = create_model('convmixer_256_8', n_classes=100).pretrained_cfg
    assert cifar['input_size'] == (3, 32, 32) and cifar['num_classes'] == 10 and cifar['url'] == ''
    custom = convmixer(64, 2, in_channels=1, n_classes=4).pretrained_cfg
    assert custom['input_size'] == (1, 224, 224) and custom['num_classes'] == 4
    assert len(custom['mean']) == len(custom['std']) == 1
    assert None not in custom.values() and None not in cifar.values()


def test_imagenet_experiment_reads_the_models_cfg():
    from experiments.imagenet import Configs
    c = Configs()
    c.model_name = 'convmixer_768_32'
    cfg = create_model('convmixer_768_32').pretrained_cfg
    assert (c.image_size, c.crop_pct, c.interpolation) == (cfg['input_size'][-1], cfg['crop_pct'],
                                                           cfg['interpolation'])
    assert c.normalization() == (cfg['mean'], cfg['std'])


# ## TorchScript and torch.fx

@pytest.mark.parametrize('name', list(BUILDS))
def test_torchscript_equals_eager(name):
    model = small(name)
    script = scripted(copy.deepcopy(model))
    x = images()
    for training in (False, True):
        model.train(training), script.train(training)
        expected, got = model(x), script(x)
        assert expected.abs().max() > 1e-3
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # Training updated the same running statistics
    for (key, a), b in zip(model.state_dict().items(), script.state_dict().values()):
        torch.testing.assert_close(a, b, msg=key)
    assert script.num_classes == model.num_classes


def test_torchscript_backward_equals_eager():
    model = small()
    script = scripted(copy.deepcopy(model))
    x = images()
    model(x).square().sum().backward()
    script(x).square().sum().backward()
    for (key, a), b in zip(model.named_parameters(), script.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=key)


@pytest.mark.parametrize('name', list(BUILDS))
def test_fx_trace_output_and_gradients_equal_eager(name):
    model = small(name)
    traced = torch.fx.symbolic_trace(copy.deepcopy(model))
    x = images()
    for training in (True, False):
        model.train(training), traced.train(training)
        x_eager, x_traced = x.clone().requires_grad_(), x.clone().requires_grad_()
        expected, got = model(x_eager), traced(x_traced)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        weights = torch.linspace(-1, 1, expected.numel()).view_as(expected)
        (expected * weights).sum().backward()
        (got * weights).sum().backward()
        torch.testing.assert_close(x_traced.grad, x_eager.grad)
        # The graph module keeps the parameters' names, in the order of their use
        grads = {key: p.grad for key, p in traced.named_parameters()}
        assert len(grads) == len(list(model.parameters()))
        for key, a in model.named_parameters():
            torch.testing.assert_close(grads[key], a.grad, msg=key)
        model.zero_grad(), traced.zero_grad()


def test_traced_model_still_checks_its_images():
    traced = torch.fx.symbolic_trace(small())
    with pytest.raises(ValueError, match='expected 3 input channels, got 4'):
        traced(torch.randn(1, 4, 12, 12))
    with pytest.raises(ValueError, match='smaller than one 2x2 patch'):
        traced(torch.randn(1, 3, 1, 12))


def test_scripted_model_on_a_wrong_image_gives_torchs_error():
    # As the Use-it page says: the check is left out, the convolution refuses
    script = scripted(small())
    with pytest.raises(RuntimeError, match='expected input.* to have 3 channels, but got 4'):
        script(torch.randn(1, 4, 12, 12))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        script(torch.randn(1, 3, 1, 12))


def test_feature_extractor_by_node_name():
    model = small().eval()
    nodes = {'patch_emb': 'patches', **{f'conv_mixer_layers.{i}': f'layer{i}' for i in range(4)}}
    extractor = create_feature_extractor(model, return_nodes=nodes)
    x = images(size=12)
    features = extractor(x)
    assert list(features) == list(nodes.values())
    assert all(f.shape == (2, 16, 6, 6) for f in features.values())
    torch.testing.assert_close(features['patches'], model.patch_emb(x))
    layers = model.forward_intermediates(x, intermediates_only=True)
    for i in range(4):
        torch.testing.assert_close(features[f'layer{i}'], layers[i])


# ## forward_intermediates and prune_intermediate_layers against timm's ConvMixer

def with_timm_twin():
    ours = small().eval()
    theirs = TimmConvMixer(dim=16, depth=4, kernel_size=3, patch_size=2, num_classes=5).eval()
    theirs.load_state_dict(to_timm_state_dict(ours))
    return ours, theirs


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b) == 2
        assert_same(a[0], b[0])
        assert_same(a[1], b[1])
    else:
        assert isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('indices', [None, 1, 3, [0], [1, -1], (2, 0), [-4, 3]])
@pytest.mark.parametrize('stop_early', [False, True])
@pytest.mark.parametrize('intermediates_only', [False, True])
@pytest.mark.parametrize('norm', [False, True])
def test_forward_intermediates_as_timms(indices, stop_early, intermediates_only, norm):
    ours, theirs = with_timm_twin()
    x = images()
    kwargs = dict(indices=indices, stop_early=stop_early, intermediates_only=intermediates_only, norm=norm)
    with torch.no_grad():
        assert_same(ours.forward_intermediates(x, **kwargs), theirs.forward_intermediates(x, **kwargs))
        if not stop_early and not intermediates_only:
            final, _ = ours.forward_intermediates(x, **kwargs)
            torch.testing.assert_close(final, ours.forward_features(x))


def test_forward_intermediates_refuses_what_timm_refuses():
    ours, theirs = with_timm_twin()
    x = images()
    for indices, message in [(5, 'last 5 layers of 4'), (0, 'last 0 layers'), ([4], 'out of range'),
                             ([-5], 'out of range')]:
        with pytest.raises(ValueError, match=message):
            ours.forward_intermediates(x, indices=indices)
        with pytest.raises(Exception):
            theirs.forward_intermediates(x, indices=indices)
    with pytest.raises(ValueError, match="output_fmt must be 'NCHW'"):
        ours.forward_intermediates(x, output_fmt='NHWC')
    with pytest.raises(ValueError, match='at least one'):
        ours.forward_intermediates(x, indices=[])


@pytest.mark.parametrize('indices', [1, 2, [1], [0, 2]])
def test_prune_intermediate_layers_as_timms(indices):
    ours, theirs = with_timm_twin()
    assert ours.prune_intermediate_layers(indices) == theirs.prune_intermediate_layers(indices)
    assert len(ours.conv_mixer_layers) == len(theirs.blocks)
    assert ours.num_classes == theirs.num_classes == 0
    x = images()
    with torch.no_grad():
        assert_same(ours.forward_intermediates(x, indices=indices),
                    theirs.forward_intermediates(x, indices=indices))
        # timm drops the pooling with the head too; ours keeps it
        torch.testing.assert_close(ours(x), theirs(x).mean((2, 3)))
    # and the pruned model loads back into timm's pruned one
    theirs.load_state_dict(to_timm_state_dict(ours))
