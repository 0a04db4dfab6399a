"""
A reader copies the first command of a page. If the page has not said how to
install the project before it, that command stops with
`ModuleNotFoundError: labml`. So every page whose prose shows a command that
runs the project (`python experiments/...`, `python -m experiments...`,
`python benchmarks/...`) shows an install line before its first one, and the
extra it installs (`.[experiment]`, `.[dashboard]`, ...) is one that
pyproject.toml defines.
"""

import re
import tomllib
from pathlib import Path
from typing import Dict

import pytest

from literate import SOURCE_DIRS
from litparse import parse_source

ROOT = Path(__file__).resolve().parents[2]

# A command that runs part of the project
COMMAND = re.compile(r'\bpython3? (?:-m )?(?:experiments|benchmarks)[/.]')
# An install of the project from its clone: `pip install -e .` or `pip install -e ".[extra,...]"`
INSTALL = re.compile(r'\bpip install -e "?\.(?:\[([\w,-]+)\])?"?')
EXTRAS = set(tomllib.loads((ROOT / 'pyproject.toml').read_text(encoding='utf-8'))
             ['project']['optional-dependencies'])


def without_headings(prose: str) -> str:
    """Headings name a page (`# python -m experiments.dashboard`); they are not commands to copy."""
    return re.sub(r'(?m)^#{1,6} .*$', '', prose)


def pages_prose() -> Dict[str, str]:
    """The prose of every page of the site, as its source holds it, without front matter."""
    pages = {}
    for path in sorted((ROOT / 'docs' / 'pages').glob('*.md')):
        text = path.read_text(encoding='utf-8')
        pages[path.relative_to(ROOT).as_posix()] = re.sub(r'\A---\n.*?\n---\n', '', text, flags=re.DOTALL)
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob('*.py')):
            parsed = parse_source(path.read_text(encoding='utf-8'))
            pages[path.relative_to(ROOT).as_posix()] = '\n'.join(
                text for section in parsed.sections for _, text in section.docs)
    return {page: without_headings(prose) for page, prose in pages.items()}


PAGES = pages_prose()
RUNNABLE = sorted(page for page, prose in PAGES.items() if COMMAND.search(prose))


def test_the_pages_that_run_something_are_found():
    # The pages a reader runs from; if the scan missed them, the test below would check nothing.
    assert {'experiments/cifar10.py', 'experiments/imagenet.py', 'docs/pages/reproduce.md',
            'docs/pages/performance.md', 'benchmarks/train_speed.py'} <= set(RUNNABLE)


@pytest.mark.parametrize('page', RUNNABLE)
def test_install_comes_before_the_first_command(page):
    prose = PAGES[page]
    command = COMMAND.search(prose)
    install = INSTALL.search(prose)
    assert install and install.start() < command.start(), (
        f"{page}: the first command, {prose[command.start():].splitlines()[0]!r}, comes before any "
        f"`pip install -e \".[...]\"`; a reader who copies it gets ModuleNotFoundError")
    for extra in filter(None, (install.group(1) or '').split(',')):
        assert extra in EXTRAS, f"{page}: installs the extra {extra!r}, which pyproject.toml does not define"


def test_the_library_page_says_how_to_install():
    # The Use-it page runs the library from Python, not a command; it still starts with the install.
    prose = PAGES['docs/pages/use.md']
    assert INSTALL.search(prose) and INSTALL.search(prose).start() < prose.index('```python')
