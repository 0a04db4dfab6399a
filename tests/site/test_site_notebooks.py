"""
The notebook of every annotated page (docs/tooling/litnotebook.py): linked from
its page, valid nbformat 4, in the page's order; the model's runs from top to
bottom in a fresh Jupyter kernel.
"""

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO_URL
from literate import SOURCE_DIRS
from test_site_build import CodeLines, page_of

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for folder in SOURCE_DIRS for p in (ROOT / folder).rglob('*.py'))


def notebook_of(site: Path, source: Path) -> nbformat.NotebookNode:
    path = site / source.relative_to(ROOT).with_suffix('.ipynb')
    notebook = nbformat.reads(path.read_text(encoding='utf-8'), as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    return notebook


def code_of(notebook) -> str:
    return '\n'.join(cell.source for cell in notebook.cells if cell.cell_type == 'code')


@pytest.mark.parametrize('source', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_page_links_to_its_notebook(site_build, source):
    html = page_of(site_build.site, source).read_text(encoding='utf-8')
    link = re.search(r'<a class="lit-notebook" href="([^"]+)" download[^>]*>download notebook</a>', html)
    assert link and link.group(1) == source.with_suffix('.ipynb').name
    notebook = notebook_of(site_build.site, source)
    assert notebook.nbformat == 4
    assert notebook.metadata.kernelspec.name == 'python3'
    # The notebook's code is valid Python, cell by cell
    for cell in notebook.cells:
        if cell.cell_type == 'code':
            ast.parse(cell.source)


def test_model_notebook_follows_the_page(site_build):
    source = ROOT / 'labml_convmixer' / 'model.py'
    notebook = notebook_of(site_build.site, source)
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == 'markdown']
    assert markdown[0].startswith('# ConvMixer')
    # Prose keeps its math for Jupyter to render; links to anchors of the page keep their text
    assert any('$$z_0 = ' in text for text in markdown)
    assert not any('](#' in text for text in markdown)
    # Headings in the page's order
    headings = [line for text in markdown for line in text.split('\n') if line.startswith('## ')]
    order = ['## Patch embeddings', '## Depth-wise convolution with "same" padding', '## ConvMixer layer',
             '## Classification head', '## ConvMixer', '## What the layers learn', '## Try it']
    assert [h for h in headings if h in order] == order
    # Every line of code on the page is in the notebook, in the page's order
    parser = CodeLines()
    parser.feed(page_of(site_build.site, source).read_text(encoding='utf-8'))
    code = code_of(notebook).split('\n')
    position = 0
    for _, line in parser.lines:
        if line.strip():
            position = code.index(line, position) + 1
    # No set-up cell: the model needs only torch, not the repository
    assert 'pip' not in code_of(notebook) and REPO_URL not in code_of(notebook)


def test_model_notebook_runs_in_a_fresh_kernel(site_build, tmp_path):
    from nbclient import NotebookClient

    notebook = notebook_of(site_build.site, ROOT / 'labml_convmixer' / 'model.py')
    # It imports torch and Python's own modules, nothing else
    imported = set()
    for node in ast.walk(ast.parse(code_of(notebook))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split('.')[0])
    assert imported - set(sys.stdlib_module_names) == {'torch'}
    # A real kernel, started in an empty folder, runs every cell
    NotebookClient(notebook, timeout=300, kernel_name='python3',
                   resources={'metadata': {'path': str(tmp_path)}}).execute()
    outputs = ''.join(output.get('text', '') for cell in notebook.cells[-2:] for output in cell.outputs)
    assert 'ConvMixer-256/8: 594,186 parameters' in outputs
    assert 'torch.Size([8, 10])' in outputs


def test_experiment_notebook_installs_and_has_a_quick_run(site_build):
    notebook = notebook_of(site_build.site, ROOT / 'experiments' / 'cifar10.py')
    setup, quick = notebook.cells[0], notebook.cells[1]
    assert setup.cell_type == 'code' and "'pip', 'install'" in setup.source
    assert 'git' in setup.source and REPO_URL in setup.source
    assert quick.cell_type == 'code' and re.search(r"^QUICK_RUN = \['--epochs', '2'", quick.source, re.M)
    assert notebook.cells[2].cell_type == 'markdown'
    assert notebook.cells[2].source.startswith('# ConvMixer on CIFAR-10')
    # The last cell runs the recipe with the quick setting, in place of the script's main block
    last = notebook.cells[-1].source
    assert 'main(QUICK_RUN)' in last and "__name__ == '__main__'" not in last
    # Links to other pages go to the files in the repository
    text = json.dumps(notebook)
    assert f'{REPO_URL}/blob/main/labml_convmixer/model.py' in text
    assert '.html)' not in text
