"""
A Jupyter notebook of each annotated page, made from the same file at build
time, so that it never drifts from the page.

The notebook follows the page: the introduction, then each piece of prose as
a Markdown cell (its math is left as TeX, which Jupyter renders) and each
piece of code as a code cell. A notebook runs from top to bottom, so a code
cell holds whole top-level statements: a class is one cell, as it is in the
file, with the comments and docstrings of its methods in it; the docstring of
a top-level class or function is the Markdown cell above its code, and is not
repeated in it. Module-level prose between statements is a Markdown cell of
its own.

Links between pages become links to the files in the repository (when the
site has one), links to anchors of the page keep their text only. Pages
other than the model file need the project: their notebook starts with a
set-up cell that clones the repository when the notebook is not run inside
a clone and installs it. Some pages get cells of their own (`EXTRA_CELLS`):
the model's notebook ends by building ConvMixer-256/8 and running a batch,
and the CIFAR-10 experiment's has a short setting for a quick run, which its
last cell runs in place of the script's `if __name__ == '__main__':` block.

The notebook is nbformat 4 JSON, written without Jupyter's packages.
"""

import ast
import json
import posixpath
import re
from typing import Callable, Dict, List, Optional, Set, Tuple

from litparse import ParsedSource

# The file that runs with `torch` alone: no set-up cell
STANDALONE = 'labml_convmixer/model.py'

# Cells added to the notebook of a file: (where, kind, text), where `where` is
# 'start' (after the set-up cell), 'end', or 'main' (in place of the script's
# `if __name__ == '__main__':` block)
EXTRA_CELLS: Dict[str, List[Tuple[str, str, str]]] = {
    'labml_convmixer/model.py': [
        ('end', 'markdown', '## Try it\n\n'
                            'ConvMixer-256/8, the paper\'s CIFAR-10 model ($h = 256$, $d = 8$, $k = 5$, $p = 2$): '
                            'its number of parameters, and a batch of 8 random $32 \\times 32$ images through it.'),
        ('end', 'code', 'model = convmixer(256, 8, kernel_size=5, patch_size=2, n_classes=10)\n'
                        'n_parameters = sum(p.numel() for p in model.parameters())\n'
                        'print(f"ConvMixer-256/8: {n_parameters:,} parameters")'),
        ('end', 'code', 'images = torch.randn(8, 3, 32, 32)\n'
                        'logits = model(images)\n'
                        'print(logits.shape)  # 8 images, 10 classes'),
    ],
    'experiments/cifar10.py': [
        ('start', 'code', '# A quick run, to see it work: 2 epochs of a small ConvMixer on 2,000 of the\n'
                          '# training images (minutes on a CPU). Set `QUICK_RUN = []` for the recipe\n'
                          '# itself: ConvMixer-256/8 for 25 epochs, a run for a GPU. The last cell of\n'
                          '# the notebook starts the run with these command-line arguments.\n'
                          "QUICK_RUN = ['--epochs', '2', '--train-subset', '2000', '--d-model', '64', '--n-layers', '4']"),
        ('main', 'code', '# `python experiments/cifar10.py` calls `main()`; here it gets `QUICK_RUN` as its\n'
                         '# command line. It ends by exiting with the run\'s status, which a notebook shows.\n'
                         'try:\n'
                         '    main(QUICK_RUN)\n'
                         'except SystemExit as done:\n'
                         '    print(f"finished, exit status {done.code}")'),
    ],
}

# labml 0.5.3 writes to a notebook with `IPython.core.display.display`, which
# IPython 9 no longer has; the set-up cell of the experiments gives it the one
# IPython has now.
LABML_IN_IPYTHON = ('\n\n# labml 0.5.3 looks for `display` where IPython 8 had it\n'
                    'import IPython.core.display\nimport IPython.display\n\n'
                    "if not hasattr(IPython.core.display, 'display'):\n"
                    '    IPython.core.display.display = IPython.display.display')

MARKDOWN_LINK_RE = re.compile(r'(!?)\[([^\]]*)\]\(([^)\s]+)\)')


def notebook_json(parsed: ParsedSource, text: str, path: str,
                  link: Callable[[str], Optional[str]], repo_url: str = '') -> str:
    """
    The notebook of the file `path` (its repository path), whose source is
    `text`, as JSON. `link(path)` gives the address of the repository file
    `path` that prose links to, or `None` to keep only the link's text.
    """
    extra = EXTRA_CELLS.get(path, [])
    main = next((body for where, kind, body in extra if where == 'main'), None)
    cells = _page_cells(parsed, text, path, link, main)
    start = [] if path == STANDALONE else [('code', _setup_cell(path, repo_url))]
    start += [(kind, body) for where, kind, body in extra if where == 'start']
    end = [(kind, body) for where, kind, body in extra if where == 'end']
    notebook = {
        'cells': [_cell(i, kind, body) for i, (kind, body) in enumerate(start + cells + end)],
        'metadata': {
            'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': {'name': 'python'},
        },
        'nbformat': 4,
        'nbformat_minor': 5,
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False) + '\n'


def _cell(index: int, kind: str, body: str) -> dict:
    lines = body.split('\n')
    cell = {'cell_type': kind, 'id': f'cell-{index}', 'metadata': {},
            'source': [line + '\n' for line in lines[:-1]] + [lines[-1]]}
    if kind == 'code':
        cell.update(execution_count=None, outputs=[])
    return cell


def _setup_cell(path: str, repo_url: str) -> str:
    clone = ''
    if repo_url:
        folder = repo_url.rstrip('/').rsplit('/', 1)[-1]
        clone = (f"if not Path({path!r}).exists():\n"
                 f"    if not Path({folder!r}).exists():\n"
                 f"        subprocess.run(['git', 'clone', '--depth', '1', {repo_url!r}], check=True)\n"
                 f"    os.chdir({folder!r})\n")
    return (f"# Set-up: this notebook is `{path}`, which needs the project. Run it in a\n"
            f"# clone of the repository{'; elsewhere (Colab, say) this cell makes one' if repo_url else ''}.\n"
            f"# It installs the project with what the experiments need.\n"
            f"import os\nimport subprocess\nimport sys\nfrom pathlib import Path\n\n"
            f"{clone}"
            f"subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--editable', '.[experiment]'],\n"
            f"               check=True)\n"
            f"# The file's code finds the project from its own path, and a script's `main()`\n"
            f"# reads its command line (here: none, not the kernel's) from `sys.argv`\n"
            f"__file__ = str(Path({path!r}).resolve())\n"
            f"sys.argv = [{posixpath.basename(path)!r}]"
            f"{LABML_IN_IPYTHON if path.startswith(('experiments/', 'benchmarks/')) else ''}")


def _top_level_spans(tree: ast.Module) -> List[Tuple[int, int, ast.stmt]]:
    """(first line with decorators, last line, statement) of each top-level statement."""
    spans = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
        spans.append((first, node.end_lineno, node))
    return spans


def _docstring_lines(node: ast.stmt) -> Set[int]:
    """The lines of a class's or function's docstring, unless it is the whole body."""
    body = getattr(node, 'body', None)
    if not (isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and len(body) > 1
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return set()
    return set(range(body[0].lineno, body[0].end_lineno + 1))


def _is_main_block(node: ast.stmt) -> bool:
    """`if __name__ == '__main__':`"""
    test = getattr(node, 'test', None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == '__name__' and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == '__main__')


def _page_cells(parsed: ParsedSource, text: str, path: str, link: Callable[[str], Optional[str]],
                main: Optional[str] = None) -> List[Tuple[str, str]]:
    """The page's prose and code as cells; `main`, when given, replaces the script's main block."""
    lines = text.replace('\r\n', '\n').split('\n')
    tree = ast.parse(text)
    spans = _top_level_spans(tree)
    if ast.get_docstring(tree, clean=False) is not None:
        spans = spans[1:]  # the module docstring is the introduction

    def statement_of(line: int) -> Optional[int]:
        return next((i for i, (first, last, _) in enumerate(spans) if first <= line <= last), None)

    cells: List[Tuple[str, str]] = []
    emitted: Set[int] = set()  # top-level statements already in a code cell
    skipped: Set[int] = set()  # docstring lines that are a Markdown cell
    for section in parsed.sections:
        docs = [ln for ln, _ in section.docs]
        owner = statement_of(docs[0]) if docs and not section.intro else None
        if docs and (owner is None or owner not in emitted):
            cells.append(('markdown', _markdown(section.docs, path, link)))
            if owner is not None:
                skipped |= _docstring_lines(spans[owner][2])
        new = [i for i in dict.fromkeys(statement_of(ln) for ln, line in section.code if line.strip())
               if i is not None and i not in emitted]
        if new:
            emitted.update(new)
            # From the first statement to the last, with the blank lines between them
            first, last = min(spans[i][0] for i in new), max(spans[i][1] for i in new)
            others = {ln for i, (a, b, _) in enumerate(spans) if i not in new for ln in range(a, b + 1)}
            code = [lines[ln - 1] for ln in range(first, last + 1) if ln not in skipped | others]
            if main is not None and _is_main_block(spans[new[-1]][2]):
                code = code[:len(code) - (spans[new[-1]][1] - spans[new[-1]][0] + 1)] + [main]
            cells.append(('code', '\n'.join(code).strip('\n')))
    return [(kind, body) for kind, body in cells if body.strip()]


def _markdown(docs: List[Tuple[int, str]], path: str, link: Callable[[str], Optional[str]]) -> str:
    folder = posixpath.dirname(path)

    def replace(m: re.Match) -> str:
        bang, label, target = m.groups()
        if bang or re.match(r'[a-z]+:', target):
            return m.group(0)
        address, _, anchor = target.partition('#')
        if not address:
            return label
        resolved = posixpath.normpath(posixpath.join(folder, address))
        resolved = re.sub(r'\.(html|md)$', '.py', resolved)
        url = link(resolved)
        return f'[{label}]({url})' if url else label

    return MARKDOWN_LINK_RE.sub(replace, '\n'.join(text for _, text in docs)).strip('\n')
