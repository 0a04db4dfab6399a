"""
Each of the paper's parts in `labml_convmixer/model.py` works when its source
alone is copied into a file with nothing but the torch imports: copied out by
`ast`, built, run forward and backward, and compared with the package's own
class on the same weights.
"""

import ast
import builtins
import types
from pathlib import Path
from typing import Dict, List, Set

import pytest
import torch

from labml_convmixer import model as package_model
from labml_convmixer.factory import convmixer

MODEL_FILE = Path(__file__).resolve().parents[1] / 'labml_convmixer' / 'model.py'
# All that a copied part may import
HEADER = 'import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n'

# Each paper part, and the parts of model.py it is built from (which come with it)
PARTS: Dict[str, List[str]] = {
    'PatchEmbeddings': [],
    'DepthWiseConv2d': [],
    'ConvMixerLayer': ['DepthWiseConv2d'],
    'ClassificationHead': [],
    'clone_module_list': [],
    'ConvMixer': ['PatchEmbeddings', 'DepthWiseConv2d', 'ConvMixerLayer', 'ClassificationHead',
                  'clone_module_list'],
}


def definitions() -> Dict[str, ast.stmt]:
    tree = ast.parse(MODEL_FILE.read_text(encoding='utf-8'))
    return {node.name: node for node in tree.body
            if isinstance(node, (ast.ClassDef, ast.FunctionDef))}


def bound_names(node: ast.AST) -> Set[str]:
    """Every name the definition binds itself: arguments, assignments, imports, loops."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split('.')[0] for a in sub.names)
        elif isinstance(sub, (ast.FunctionDef, ast.ClassDef)):
            names.add(sub.name)
    return names


def free_names(node: ast.AST) -> Set[str]:
    """The names a definition reads but neither binds nor gets from Python itself."""
    used = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}
    return used - bound_names(node) - set(dir(builtins))


def copy_alone(name: str, tmp_path: Path) -> types.ModuleType:
    """A fresh module of the torch imports, the parts `name` is built from, and `name`."""
    defs = definitions()
    text = MODEL_FILE.read_text(encoding='utf-8')
    sources = [ast.get_source_segment(text, defs[part]) for part in PARTS[name] + [name]]
    path = tmp_path / f'copied_{name}.py'
    path.write_text(HEADER + '\n\n' + '\n\n\n'.join(sources) + '\n', encoding='utf-8')
    module = types.ModuleType(f'copied_{name}')
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding='utf-8'), str(path), 'exec'), module.__dict__)
    return module


def test_parts_are_the_papers_in_its_order():
    names = [n for n in definitions()]
    assert names == ['PatchEmbeddings', 'DepthWiseConv2d', 'ConvMixerLayer', 'ClassificationHead',
                     'clone_module_list', 'ConvMixer', 'convmixer']


@pytest.mark.parametrize('name', list(PARTS))
def test_part_reaches_only_torch_and_the_parts_it_is_built_from(name):
    # A call into a helper, a constant or a class of the file that is not one of
    # the part's own parts would not come with the copy
    outside = free_names(definitions()[name]) - {'torch', 'nn', 'F'} - set(PARTS[name])
    assert not outside, f"{name} uses {sorted(outside)}"


def _build(module, name: str):
    """The part, built with small sizes."""
    if name == 'PatchEmbeddings':
        return module.PatchEmbeddings(8, 2, 3), (2, 3, 10, 10)
    if name == 'DepthWiseConv2d':
        return module.DepthWiseConv2d(6, 4), (2, 6, 7, 9)
    if name == 'ConvMixerLayer':
        return module.ConvMixerLayer(6, 3), (2, 6, 5, 5)
    if name == 'ClassificationHead':
        return module.ClassificationHead(6, 4), (2, 6, 5, 5)
    if name == 'clone_module_list':
        layers = module.clone_module_list(torch.nn.Linear(4, 4), 3)
        return torch.nn.Sequential(*layers), (2, 4)
    parts = module
    return module.ConvMixer(parts.ConvMixerLayer(8, 3), 2, parts.PatchEmbeddings(8, 2, 3),
                            parts.ClassificationHead(8, 5)), (2, 3, 12, 12)


@pytest.mark.parametrize('name', list(PARTS))
def test_copied_part_equals_the_packages(name, tmp_path):
    copied_module = copy_alone(name, tmp_path)
    copied, shape = _build(copied_module, name)
    ours, _ = _build(package_model, name)
    # The same weights, and the same input
    ours.load_state_dict(copied.state_dict())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    outputs = []
    for module in (copied, ours):
        x_in = x.clone().requires_grad_()
        y = module(x_in)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outputs.append((y.detach(), x_in.grad, [p.grad for p in module.parameters()]))
    (y1, gx1, grads1), (y2, gx2, grads2) = outputs
    assert y1.abs().max() > 0
    assert torch.equal(y1, y2)
    assert torch.equal(gx1, gx2)
    assert all(g is not None for g in grads1)
    assert all(torch.equal(a, b) for a, b in zip(grads1, grads2))
    # and the copy ran the copied code, not the package's
    code = getattr(copied_module, name) if name == 'clone_module_list' else type(copied).forward
    assert code.__code__.co_filename == copied_module.__file__


def test_the_package_model_computes_the_papers_forward():
    # The model convmixer() returns splits `forward` at the head and adds checks;
    # on the same weights it gives what the paper's `ConvMixer.forward` gives
    torch.manual_seed(0)
    model = convmixer(8, 3, kernel_size=4, patch_size=2, n_classes=5)
    paper = package_model.convmixer(8, 3, kernel_size=4, patch_size=2, n_classes=5)
    x = torch.randn(2, 3, 12, 12)
    for mode in (True, False):
        paper.load_state_dict(model.state_dict())
        model.train(mode), paper.train(mode)
        assert torch.equal(model(x), paper(x))
        assert torch.equal(model(x), package_model.ConvMixer.forward(model, x))
