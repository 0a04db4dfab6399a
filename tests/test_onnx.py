"""
ONNX export: the CIFAR-10 model (and variants with an even kernel and other
orderings) exports with `torch.onnx.export`, through both the `torch.export`-based
exporter and the TorchScript-based one, and onnxruntime gives PyTorch's outputs.
"""
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from labml_convmixer.models import create_model

VARIANTS = {
    'cifar10': {},
    'even_kernel': {'kernel_size': 4},
    'relu_pre_act_bn_first': {'activation': 'relu', 'pre_act': True, 'bn_first': True},
}


def eval_model(overrides):
    torch.manual_seed(0)
    model = create_model('convmixer_256_8', **overrides)
    # Non-trivial normalization statistics, so that every part of the graph shows in the output
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    return model.eval()


def export(model, path, dynamo: bool):
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if dynamo:
            torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=['images'],
                              output_names=['logits'],
                              dynamic_shapes={'x': {0: torch.export.Dim('batch', max=4096)}})
        else:
            torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=['images'],
                              output_names=['logits'], dynamic_axes={'images': {0: 'batch'}})
    onnx.checker.check_model(onnx.load(str(path)))


@pytest.mark.parametrize('dynamo', [True, False], ids=['torch_export', 'torchscript'])
@pytest.mark.parametrize('variant', ['cifar10', 'even_kernel'])
def test_onnx_matches_pytorch(variant, dynamo, tmp_path):
    model = eval_model(VARIANTS[variant])
    path = tmp_path / f'{variant}.onnx'
    export(model, path, dynamo)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images']
    # A batch size other than the one used for export, to check the batch axis is dynamic
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    (logits,) = session.run(['logits'], {'images': x.numpy()})
    assert logits.shape == (3, 10)
    assert np.abs(expected).max() > 1e-2
    assert np.abs(logits - expected).max() <= 1e-4


def test_onnx_other_ordering(tmp_path):
    model = eval_model(VARIANTS['relu_pre_act_bn_first'])
    path = tmp_path / 'ordering.onnx'
    export(model, path, dynamo=True)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(x).numpy()
    (logits,) = session.run(None, {'images': x.numpy()})
    assert np.abs(logits - expected).max() <= 1e-4
    # The ordering is really in the graph: the default ordering gives other outputs
    default = eval_model({'activation': 'relu'})
    default.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert np.abs(default(x).numpy() - logits).max() > 1e-3
