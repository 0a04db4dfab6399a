"""
Tensor shapes traced from the running model (docs/tooling/litshapes.py): the
trace itself, the shapes the model file's prose states by hand, which must
agree with it, and the shapes on the built page.
"""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from litparse import parse_source
from litshapes import SETTINGS, Trace, format_shapes, trace_all, trace_source

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / 'labml_convmixer' / 'model.py'
# A shape written in the prose: a code span such as `[batch_size, d_model, height // p, width // p]`
STATED_RE = re.compile(r'`\[([^\]`]+)\]`')
# Names a stated shape may use besides the sizes of a setting: the paper's symbols
ALIASES = {'h': 'd_model', 'd': 'n_layers', 'k': 'kernel_size', 'p': 'patch_size', 'channels': 'in_channels'}


@pytest.fixture(scope='module')
def model_text() -> str:
    return MODEL.read_text(encoding='utf-8')


@pytest.fixture(scope='module')
def traces(model_text) -> Dict[str, Trace]:
    return trace_all(model_text, 'labml_convmixer/model.py')


def lines_of(text: str, code: str) -> List[int]:
    """The numbers of the lines of `text` that are `code` (stripped)."""
    found = [i for i, line in enumerate(text.split('\n'), 1) if line.strip() == code]
    assert found, f"{code!r} is not in the file"
    return found


def test_trace_of_the_cifar10_model(model_text, traces):
    cifar = traces['cifar10']

    def shape(code):
        shapes = {format_shapes(cifar.lines.get(ln, [])) for ln in lines_of(model_text, code)}
        assert len(shapes) == 1, f"{code!r}: {shapes}"
        return shapes.pop()

    assert shape('x = self.norm(self.act(self.conv(x)))') == '[8, 256, 16, 16]'
    assert shape('x = x + self.norm1(self.act1(self.depth_wise_conv(x)))') == '[8, 256, 16, 16]'
    assert shape('x = self.pool(x).flatten(1)') == '[8, 256]'
    assert shape('x = self.linear(x)') == '[8, 10]'
    assert shape('x = self.classification(x)') == '[8, 10]'
    assert shape('return self._conv_forward(x, self.weight, self.bias)') == '[8, 256, 16, 16]'
    # A line run once per layer has one shape; `return x` repeats nothing
    assert shape('x = layer(x)') == '[8, 256, 16, 16]'
    assert shape('return x') == ''


def test_imagenet_trace_has_the_same_lines(traces):
    imagenet = traces['imagenet']
    assert set(imagenet.lines) == set(traces['cifar10'].lines)
    shapes = {format_shapes(s) for s in imagenet.lines.values()}
    assert shapes == {'[8, 1536, 32, 32]', '[8, 1536]', '[8, 1000]'}


def test_every_tensor_line_of_every_forward_has_a_shape(model_text, traces):
    """Every statement `x = ...` in a `forward` (or `forward_*`) method is traced, but the
    padding of even kernels, which the traced models (odd kernels) never run."""
    tree = ast.parse(model_text)
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (node.name == 'forward' or node.name.startswith('forward_')):
            for statement in ast.walk(node):
                if isinstance(statement, ast.Assign) and [getattr(t, 'id', '') for t in statement.targets] == ['x']:
                    if 'F.pad' not in ast.unparse(statement) and statement.end_lineno not in traces['cifar10'].lines:
                        missing.append(statement.end_lineno)
    assert not missing, f"lines without a shape: {missing}"


def _sizes(setting) -> Dict[str, int]:
    sizes = dict(setting.sizes)
    sizes.update({alias: sizes[name] for alias, name in ALIASES.items()})
    return sizes


def _evaluate(expression: str, sizes: Dict[str, int]) -> int:
    """A dimension written as names, numbers and `+ - * //` (nothing else is evaluated)."""
    tree = ast.parse(expression.strip(), mode='eval')
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id in sizes, f"`{expression}`: unknown size {node.id!r}"
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.Constant, ast.Load, ast.Add, ast.Sub,
                                   ast.Mult, ast.FloorDiv)):
            raise AssertionError(f"`{expression}` is not a size")
    return eval(compile(tree, '<shape>', 'eval'), {'__builtins__': {}}, dict(sizes))


def stated_shape_errors(text: str, trace: Trace, setting) -> Tuple[List[str], int]:
    """
    Every shape the prose states, evaluated with the setting's sizes, against
    the shapes traced where the prose points: the code of its section, and
    the definitions that code starts (their arguments and every line in them).
    Returns one message per disagreement, and the number of shapes checked.
    """
    parsed = parse_source(text, 'labml_convmixer.model')
    sizes = _sizes(setting)
    errors, checked = [], 0
    for section in parsed.sections:
        code = {ln for ln, _ in section.code}
        traced: Set[tuple] = {s for ln in code for s in trace.lines.get(ln, [])}
        for d in parsed.definitions:
            if d.kind != 'variable' and d.first_line in code:
                span = range(d.first_line, d.end_line + 1)
                traced |= {s for ln in span for s in trace.lines.get(ln, [])}
                traced |= {s for ln in span for shapes in trace.arguments.get(ln, {}).values() for s in shapes}
        for ln, line in section.docs:
            for match in STATED_RE.finditer(line):
                stated = tuple(_evaluate(term, sizes) for term in match.group(1).split(','))
                checked += 1
                if stated not in traced:
                    errors.append(f"line {ln}: `[{match.group(1)}]` is {list(stated)} with {setting.label}, "
                                  f"the code there gives {sorted(map(list, traced))}")
    return errors, checked


@pytest.mark.parametrize('key', [s.key for s in SETTINGS])
def test_shapes_in_the_prose_agree_with_the_trace(model_text, traces, key):
    setting = next(s for s in SETTINGS if s.key == key)
    errors, checked = stated_shape_errors(model_text, traces[key], setting)
    assert not errors, '\n'.join(errors)
    assert checked >= 9


def test_a_wrong_stated_shape_is_caught(model_text):
    stated = '`[batch_size, d_model, height // p, width // p]`.'
    assert stated in model_text
    wrong = model_text.replace(stated, '`[batch_size, d_model, height, width]`.', 1)
    setting = SETTINGS[0]
    errors, _ = stated_shape_errors(wrong, trace_source(wrong, 'wrong.py', setting), setting)
    assert len(errors) == 1 and '[8, 256, 32, 32]' in errors[0]


class ShapesOnPage(HTMLParser):
    """Line number → the shape after that code line, with its `data-shape-*` attributes."""

    def __init__(self):
        super().__init__()
        self.line, self.in_shape = None, False
        self.shapes: Dict[int, dict] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if 'data-ln' in attrs:
            self.line = int(attrs['data-ln'])
        if attrs.get('class') == 'lit-shape' and self.line is not None:
            self.in_shape = True
            self.shapes[self.line] = {**attrs, 'text': ''}

    def handle_endtag(self, tag):
        self.in_shape = False

    def handle_data(self, data):
        if self.in_shape:
            self.shapes[self.line]['text'] += data


def test_the_page_shows_the_traced_shapes(site_build, model_text, traces):
    html = (site_build.site / 'labml_convmixer' / 'model.html').read_text(encoding='utf-8')
    page = ShapesOnPage()
    page.feed(html)
    assert set(page.shapes) == set(traces['cifar10'].lines)
    for line, shape in page.shapes.items():
        assert shape['text'] == shape['data-shape-cifar10'] == format_shapes(traces['cifar10'].lines[line])
        assert shape['data-shape-imagenet'] == format_shapes(traces['imagenet'].lines[line])
    assert page.shapes[lines_of(model_text, 'x = self.linear(x)')[0]]['text'] == '[8, 10]'
    # The switch between the traced models, under the introduction
    for setting in SETTINGS:
        assert f'data-trace="{setting.key}"' in html
    # Other pages have no shapes
    assert 'lit-shape' not in (site_build.site / 'labml_convmixer' / 'models.html').read_text(encoding='utf-8')
