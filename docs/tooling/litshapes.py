"""
Tensor shapes traced from the running model, shown beside the code.

The build runs the model file's own code and writes, beside every line of a
function of that file that produced a tensor, the shape it produced: a reader
never works a shape out by hand, and the page cannot state a wrong one.

How: the file's text (the very text the page shows) is compiled and run as a
fresh module, its `convmixer` builds a model, and the model runs a batch
under `sys.settrace`. For every frame of the file, the tracer knows which
statement each line belongs to (from the `ast`); when the next statement
starts, the one before it has finished, and the tensors it assigned to plain
names are recorded, at the statement's last line. A `return` of anything
but a plain name is recorded from the returned value. Each line keeps the
distinct shapes it produced, in order (a line run once per layer has one).
The arguments of every call are recorded too, by the first line of the
function, so that a test can check the shapes the prose states.

Two settings are traced (`SETTINGS`): the CIFAR-10 model on 8 images of
32 x 32, computed for real on the CPU (a fraction of a second), and ImageNet's
ConvMixer-1536/20 on 8 images of 224 x 224 on PyTorch's `meta` device, where
tensors have shapes and no data, so that nothing is computed and the build
stays fast. Besides the model's `forward`, the run calls the backbone methods
(`forward_features`, `forward_head`, `forward_intermediates`) and a model with
`pre_act` and `bn_first`, so that the reordered variants' lines get shapes too.
"""

import ast
import sys
import types
from dataclasses import dataclass, field
from html import escape
from typing import Dict, List, Optional, Tuple

Shape = Tuple[int, ...]

# The page whose code is traced
TRACED_PAGE = 'labml_convmixer/model.md'


@dataclass(frozen=True)
class Setting:
    """A model and a batch to trace: the sizes are those a shape in the prose may name."""
    key: str
    label: str
    sizes: Dict[str, int]
    device: str

    def builder_arguments(self) -> Dict[str, int]:
        return {name: self.sizes[name] for name in
                ('d_model', 'n_layers', 'kernel_size', 'patch_size', 'n_classes', 'in_channels')}


SETTINGS = (
    Setting('cifar10', 'ConvMixer-256/8, 8 CIFAR-10 images of 32 × 32',
            dict(batch_size=8, in_channels=3, height=32, width=32, d_model=256, n_layers=8,
                 kernel_size=5, patch_size=2, n_classes=10), 'cpu'),
    Setting('imagenet', 'ConvMixer-1536/20, 8 ImageNet images of 224 × 224',
            dict(batch_size=8, in_channels=3, height=224, width=224, d_model=1536, n_layers=20,
                 kernel_size=9, patch_size=7, n_classes=1000), 'meta'),
)


@dataclass
class Trace:
    # line → the distinct shapes of the tensors the statement ending there produced
    lines: Dict[int, List[Shape]] = field(default_factory=dict)
    # first line of a function (its first decorator, or `def`) → argument → shapes
    arguments: Dict[int, Dict[str, List[Shape]]] = field(default_factory=dict)

    def add_line(self, line: int, shape: Shape):
        shapes = self.lines.setdefault(line, [])
        if shape not in shapes:
            shapes.append(shape)

    def add_argument(self, first_line: int, name: str, shape: Shape):
        shapes = self.arguments.setdefault(first_line, {}).setdefault(name, [])
        if shape not in shapes:
            shapes.append(shape)


def statements_by_line(tree: ast.AST) -> Dict[int, ast.stmt]:
    """
    The innermost statement each line belongs to. A compound statement
    (`for`, `if`, `with`, ...) owns only its header lines, so that its body's
    statements are told apart from it.
    """
    owner: Dict[int, ast.stmt] = {}
    # `ast.walk` visits outer statements first, so inner ones overwrite them
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                               ast.ClassDef)):
            continue
        body = getattr(node, 'body', None)
        last = body[0].lineno - 1 if isinstance(body, list) and body else node.end_lineno
        for line in range(node.lineno, max(last, node.lineno) + 1):
            owner[line] = node
    return owner


def _assigned_names(statement: ast.stmt) -> List[str]:
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
        targets = [statement.target]
    else:
        return []
    return [t.id for t in targets if isinstance(t, ast.Name)]


class _Tracer:
    """`sys.settrace` function: follows the frames of one file, records shapes in `trace`."""

    def __init__(self, filename: str, statements: Dict[int, ast.stmt], torch):
        self.filename, self.statements, self.torch = filename, statements, torch
        self.trace = Trace()

    def shape(self, value) -> Optional[Shape]:
        return tuple(value.shape) if isinstance(value, self.torch.Tensor) else None

    def __call__(self, frame, event, arg):
        if event != 'call' or frame.f_code.co_filename != self.filename:
            return None
        code = frame.f_code
        for name in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
            shape = self.shape(frame.f_locals.get(name))
            if shape is not None:
                self.trace.add_argument(code.co_firstlineno, name, shape)
        return _FrameTracer(self).step


class _FrameTracer:
    def __init__(self, tracer: _Tracer):
        self.tracer = tracer
        self.current: Optional[ast.stmt] = None

    def finish(self, frame):
        """The current statement has run: record the tensors it assigned."""
        statement, self.current = self.current, None
        for name in _assigned_names(statement) if statement is not None else []:
            shape = self.tracer.shape(frame.f_locals.get(name))
            if shape is not None:
                self.tracer.trace.add_line(statement.end_lineno, shape)

    def step(self, frame, event, arg):
        if event == 'line':
            statement = self.tracer.statements.get(frame.f_lineno)
            if statement is not self.current:
                self.finish(frame)
                self.current = statement
        elif event == 'return':
            statement = self.current
            self.finish(frame)
            shape = self.tracer.shape(arg)
            if (isinstance(statement, ast.Return) and statement.value is not None
                    and not isinstance(statement.value, ast.Name) and shape is not None):
                self.tracer.trace.add_line(statement.end_lineno, shape)
        return self.step


def _models_and_batch(module: types.ModuleType, setting: Setting, torch):
    """The paper's model and a batch."""
    sizes = setting.sizes
    images = (sizes['batch_size'], sizes['in_channels'], sizes['height'], sizes['width'])
    with torch.device(setting.device), torch.no_grad():
        torch.manual_seed(0)
        x = torch.randn(images)
        models = [module.convmixer(**setting.builder_arguments()).eval()]
        return models, x


def trace_source(text: str, label: str, setting: Setting) -> Trace:
    """Run the model file `text` (named `label` in messages) in `setting` and trace its shapes."""
    import torch

    filename = f'<traced {label}>'
    module = types.ModuleType('litshapes_traced')
    module.__dict__['__file__'] = filename
    exec(compile(text, filename, 'exec'), module.__dict__)
    models, x = _models_and_batch(module, setting, torch)
    tracer = _Tracer(filename, statements_by_line(ast.parse(text)), torch)
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with torch.device(setting.device), torch.no_grad():
            for model in models:
                model(x)
    finally:
        sys.settrace(previous)
    return tracer.trace


def trace_all(text: str, label: str) -> Dict[str, Trace]:
    """Every setting's trace, by its key."""
    return {setting.key: trace_source(text, label, setting) for setting in SETTINGS}


def format_shapes(shapes: List[Shape]) -> str:
    """`[8, 256, 16, 16]`; several shapes of one line are joined with "or"."""
    return ' or '.join('[' + ', '.join(str(n) for n in shape) + ']' for shape in shapes)


def shape_notes(traces: Dict[str, Trace]) -> Dict[int, str]:
    """
    The HTML that follows each traced line: the first setting's shape as text,
    every setting's in a `data-shape-KEY` attribute, for the page's switch.
    """
    lines = sorted({line for trace in traces.values() for line in trace.lines})
    notes = {}
    for line in lines:
        texts = {s.key: format_shapes(traces[s.key].lines.get(line, [])) for s in SETTINGS}
        attributes = ''.join(f' data-shape-{key}="{escape(text)}"' for key, text in texts.items())
        notes[line] = f'<span class="lit-shape"{attributes}>{escape(texts[SETTINGS[0].key])}</span>'
    return notes


def switch_html() -> str:
    """The choice of traced model, above the page's code (literate.js makes it work)."""
    buttons = ''.join(
        f'<button type="button" class="lit-trace-choice" data-trace="{s.key}" '
        f'aria-pressed="{"true" if i == 0 else "false"}">{escape(s.label)}</button>'
        for i, s in enumerate(SETTINGS))
    return (f'<p class="lit-trace" role="group" aria-label="Model whose shapes the code shows">'
            f'Tensor shapes beside the code, traced when this page was built, for '
            f'{buttons}</p>')
