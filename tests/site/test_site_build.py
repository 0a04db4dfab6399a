"""
The built site: strict build, every code line on its page, anchors, math,
search and nothing loaded from another host. The site is built once per
session (see `conftest.py`).
"""

import ast
import json
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

from literate import SOURCE_DIRS
from litmath import KaTeXErrors, find_math, render_all

ROOT = Path(__file__).resolve().parents[2]
TOOLING = ROOT / 'docs' / 'tooling'

SOURCES = sorted(p for folder in SOURCE_DIRS for p in (ROOT / folder).rglob('*.py'))


class CodeLines(HTMLParser):
    """(line number, text) of every `.lit-line` of a page, in page order; the
    traced shape after a line (`.lit-shape`) is not part of its text."""

    def __init__(self):
        super().__init__()
        self.lines = []
        self.depth = 0  # span depth inside the current `.lit-line`, 0 when outside
        self.shape_depth = 0  # the depth of the `.lit-shape` inside it, 0 when outside

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.depth:
            self.depth += tag in ('span', 'a')
            if 'data-ln' in attrs:
                self.lines[-1][0] = int(attrs['data-ln'])
            if attrs.get('class') == 'lit-shape':
                self.shape_depth = self.depth
        elif tag == 'span' and attrs.get('class') == 'lit-line':
            self.depth = 1
            self.lines.append([None, ''])

    def handle_endtag(self, tag):
        if self.depth and tag in ('span', 'a'):
            if self.depth == self.shape_depth:
                self.shape_depth = 0
            self.depth -= 1

    def handle_data(self, data):
        if self.depth and not self.shape_depth:
            self.lines[-1][1] += data


def page_of(site: Path, source: Path) -> Path:
    return site / source.relative_to(ROOT).with_suffix('.html')


def prose_lines(text: str):
    """Line numbers of docstrings and full-line comments, found independently of the parser."""
    tree = ast.parse(text)
    lines = set()
    for node in [tree] + [n for n in ast.walk(tree)
                          if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]:
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            lines.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    for i, line in enumerate(text.split('\n'), 1):
        if line.strip().startswith('#'):
            lines.add(i)
    return lines


def test_strict_build_passes(site_build):
    assert site_build.strict_ok, f"mkdocs build --strict failed:\n{site_build.log}"


def test_sources_are_found():
    assert {'labml_convmixer', 'experiments'} <= set(SOURCE_DIRS)
    assert ROOT / 'labml_convmixer' / 'model.py' in SOURCES
    assert len(SOURCES) >= 2


@pytest.mark.parametrize('source', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_line_is_on_its_page_in_order(site_build, source):
    parser = CodeLines()
    parser.feed(page_of(site_build.site, source).read_text(encoding='utf-8'))
    shown = [(ln, line) for ln, line in parser.lines]
    text = site_build.sources[source]
    source_lines = text.split('\n')
    numbers = [ln for ln, _ in shown]
    assert numbers == sorted(set(numbers)), "code lines are out of order or repeated"
    for ln, line in shown:
        assert line == source_lines[ln - 1], f"line {ln} differs"
    prose = prose_lines(text)
    code = {i for i, line in enumerate(source_lines, 1) if line.strip() and i not in prose}
    missing = sorted(code - set(numbers))
    assert not missing, f"code lines not on the page: {missing[:10]}"
    # Docstrings never repeat in the code column (full-line comments may, inside brackets).
    docstring_lines = {i for i in prose if not source_lines[i - 1].strip().startswith('#')}
    assert not docstring_lines & set(numbers)


def test_model_page_structure(site_build):
    html = page_of(site_build.site, ROOT / 'labml_convmixer' / 'model.py').read_text(encoding='utf-8')
    assert '<title>ConvMixer - labml_convmixer</title>' in html
    # The module docstring is the introduction, across the page; each later
    # section has prose beside its code, or only one of them and then no
    # empty column for the other
    assert html.count('<div class="lit-intro"') == 1
    assert html.index('<div class="lit-intro"') < html.index('<div class="lit-section')
    kinds = re.findall(r'<div class="lit-section( lit-code-only| lit-docs-only)?"', html)
    assert len(kinds) > 10
    assert html.count('<div class="lit-docs">') == kinds.count('') + kinds.count(' lit-docs-only')
    assert html.count('<div class="lit-code">') == kinds.count('') + kinds.count(' lit-code-only')
    # Read top to bottom, the page is the paper's model, in the paper's order
    order = [html.index(f'id="{anchor}"') for anchor in
             ('PatchEmbeddings', 'DepthWiseConv2d', 'ConvMixerLayer.forward', 'ClassificationHead',
              'clone_module_list', 'ConvMixer.forward', 'convmixer', 'what-the-layers-learn')]
    assert order == sorted(order)
    # Anchors from qualified names
    for anchor in ('ConvMixerLayer', 'ConvMixerLayer.forward', 'clone_module_list', 'convmixer'):
        assert f'id="{anchor}"' in html
    # Identifiers link to their definitions
    assert re.search(r'<a class="lit-ref [^"]*" href="#clone_module_list" data-sym="clone_module_list">', html)
    # Math was rendered at build time, with MathML, and no delimiters are left
    assert html.count('class="katex"') > 10
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML">' in html
    assert 'lit-math' not in html and 'LITCODE' not in html


def test_a_page_without_code_has_no_code_column(site_build):
    html = (site_build.site / 'experiments' / '__init__.html').read_text(encoding='utf-8')
    assert '<div class="lit-intro"' in html
    assert 'class="lit-code' not in html and '<pre' not in html


def test_experiment_pages_have_prose_beside_their_code(site_build):
    for source in SOURCES:
        if source.relative_to(ROOT).parts[0] == 'experiments' and source.name not in ('__init__.py', '__main__.py'):
            page = page_of(site_build.site, source).read_text(encoding='utf-8')
            assert page.count('<div class="lit-docs">') >= 3, source.name


def test_home_links_to_every_annotated_page(site_build):
    home = (site_build.site / 'index.html').read_text(encoding='utf-8')
    for source in SOURCES:
        assert f'href="{source.relative_to(ROOT).with_suffix(".html").as_posix()}"' in home


def test_ids_are_unique_on_every_page(site_build):
    for page in site_build.site.rglob('*.html'):
        ids = re.findall(r'\sid="([^"]+)"', page.read_text(encoding='utf-8'))
        assert len(ids) == len(set(ids)), f"{page.name}: {sorted(i for i in set(ids) if ids.count(i) > 1)}"


def test_no_raw_math_delimiters_in_any_page(site_build):
    for page in site_build.site.rglob('*.html'):
        html = page.read_text(encoding='utf-8')
        article = html[html.find('<article'):html.find('</article>')]
        # Code may hold dollars; the rendered math holds none
        text = re.sub(r'<code[^>]*>.*?</code>', '', article, flags=re.DOTALL)
        text = re.sub(r'<[^>]+>', '', text)
        assert '$' not in text, f"{page.relative_to(site_build.site)}: {text[text.find('$') - 40:][:80]!r}"


def test_links_across_pages(site_build):
    # A page that imports from the model links to the model page's anchors.
    linked = [p for p in SOURCES if p.name != 'model.py'
              and 'model.html#' in page_of(site_build.site, p).read_text(encoding='utf-8')]
    assert linked, "no page links to a definition on the model page"


def test_no_request_to_another_host_in_html(site_build):
    for page in site_build.site.rglob('*.html'):
        html = page.read_text(encoding='utf-8')
        external = re.findall(r'<(?:script|link|img|iframe)[^>]+(?:src|href)="(?:https?:)?//[^"]+"', html)
        # The canonical address names the page; nothing loads it
        external = [tag for tag in external if 'rel="canonical"' not in tag]
        assert not external, f"{page.name} loads {external}"


def test_katex_assets_are_served(site_build):
    css = (site_build.site / 'assets' / 'katex' / 'katex.min.css').read_text(encoding='utf-8')
    fonts = re.findall(r'url\((fonts/[^)]+\.woff2)\)', css)
    assert fonts
    for font in fonts:
        assert (site_build.site / 'assets' / 'katex' / font).is_file()


def test_search_index_has_prose_and_code(site_build):
    index = json.loads((site_build.site / 'search' / 'search_index.json').read_text(encoding='utf-8'))
    text = ' '.join(doc['text'] for doc in index['docs'] if doc['location'].startswith('labml_convmixer/model.html'))
    assert 'depth-wise convolution' in text
    assert 'point_wise_conv' in text


def test_math_finder_skips_code_and_prices():
    found = find_math('Cost $5 and $6. `$x$` in code, $h$ here,\n\n$$a + b$$')
    assert [f.formula for f in found] == [('h', False), ('a + b', True)]
    assert [f.line for f in found] == [1, 3]
    # A formula that wraps is the same formula, whatever the indentation
    assert find_math('* item $a +\n  b$')[0].formula == ('a + b', False)


def test_bad_formula_is_rejected():
    with pytest.raises(KaTeXErrors) as info:
        render_all([('\\frac{', False), ('x^2', False)])
    assert list(info.value.errors) == [('\\frac{', False)]


def _tmp_project(tmp_path: Path, source: str, index: str) -> subprocess.CompletedProcess:
    """Build a one-file project with the same tooling."""
    (tmp_path / 'labml_convmixer').mkdir()
    (tmp_path / 'labml_convmixer' / 'tiny.py').write_text(textwrap.dedent(source))
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'index.md').write_text(textwrap.dedent(index))
    (tmp_path / 'mkdocs.yml').write_text(textwrap.dedent(f'''
        site_name: test
        docs_dir: docs
        use_directory_urls: false
        theme: {{name: material, font: false}}
        hooks: [{TOOLING / 'literate.py'}]
        markdown_extensions: [md_in_html, toc]
        validation: {{anchors: warn}}
        nav:
          - index.md
          - Source: labml_convmixer/
    '''))
    return subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict'], cwd=tmp_path,
                          capture_output=True, text=True)


def test_bad_formula_fails_the_build_with_file_and_line(tmp_path):
    done = _tmp_project(tmp_path, '''
        """
        Good $x$.

        Bad $\\\\frac{1$.
        """
        x = 1
    ''', '# Home\n')
    assert done.returncode != 0
    assert 'labml_convmixer/tiny.py:5: KaTeX cannot render' in done.stderr


def test_tiny_project_builds_with_prose_only_end(tmp_path):
    done = _tmp_project(tmp_path, '''
        """
        ---
        title: Tiny
        ---
        Area $a^2$.

        * a formula that wraps in a list item, $a +
          b$
        """
        def area(a):
            return a * a
        # $$
        # \\int_0^1 x \\, dx
        # $$
    ''', '# Home\n\n<!-- reading-order -->\n')
    assert done.returncode == 0, done.stderr
    page = (tmp_path / 'site' / 'labml_convmixer' / 'tiny.html').read_text(encoding='utf-8')
    # two inline formulas, one display formula (itself a `.katex` inside `.katex-display`)
    assert page.count('class="katex"') == 3 and page.count('class="katex-display"') == 1
    assert 'id="area"' in page
    home = (tmp_path / 'site' / 'index.html').read_text(encoding='utf-8')
    assert '<a href="labml_convmixer/tiny.html">Tiny</a>' in home


def test_broken_anchor_fails_the_build(tmp_path):
    done = _tmp_project(tmp_path, '''
        """See [the layer](#NoSuchClass)."""
        x = 1
    ''', '# Home\n\n[tiny](labml_convmixer/tiny.md#x)\n')
    assert done.returncode != 0
    assert "NoSuchClass" in done.stderr


def test_control_character_in_prose_fails_the_build(tmp_path):
    # `\times` in a docstring that is not raw: a tab, then "imes"
    done = _tmp_project(tmp_path, 'x = 1\n\n\ndef f():\n    """\n    A $2 \\times 3$ matrix.\n    """\n',
                        '# Home\n')
    assert done.returncode != 0
    assert "labml_convmixer/tiny.py: line 6: control character '\\t' in a docstring" in done.stderr


def test_no_control_character_or_katex_error_on_any_page(site_build):
    for page in site_build.site.rglob('*.html'):
        html = page.read_text(encoding='utf-8')
        article = html[html.find('<article'):html.find('</article>')]
        prose = re.sub(r'<(pre|code|script)\b[^>]*>.*?</\1>', '', article, flags=re.DOTALL)
        found = re.search(r'[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]', prose)
        where = page.relative_to(site_build.site)
        assert not found, f"{where}: {prose[max(0, found.start() - 40):][:80]!r}"
        assert 'katex-error' not in html, where
