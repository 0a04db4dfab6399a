"""
The mkdocs hook that turns the Python sources into side-by-side pages.

`mkdocs.yml` names this file under `hooks:`. At build time it

1. finds every `.py` file under `SOURCE_DIRS` and adds a page for each to the
   navigation, under the section `SOURCE_SECTION` (`on_config`);
2. writes each page as Markdown: one `lit-section` per prose block, its prose
   in `lit-docs` and its code in `lit-code` (`on_files`), and adds the KaTeX
   style sheet and fonts to the site;
3. renders every formula of the site with one KaTeX process (`on_files`), so a
   bad formula fails the build with its file and line;
4. puts the highlighted code and the KaTeX HTML into the finished pages
   (`on_page_content`), and checks that every link from code to a definition
   lands on an anchor that exists (`on_env`).

Nothing is written next to the sources: the pages exist only in the build.
"""

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from litcode import lex_lines, render_code
from litmath import KaTeXErrors, MathError, MathExtension, find_math, insert_rendered, katex_assets, \
    render_all
from litparse import Definition, ParsedSource, ParseError, parse_source

log = logging.getLogger('mkdocs.hooks.literate')

# Folders (relative to `mkdocs.yml`) whose Python files become pages.
SOURCE_DIRS = ('labml_convmixer', 'experiments', 'benchmarks')
# The navigation section, given as an empty list in `mkdocs.yml`, that lists them.
SOURCE_SECTION = 'Annotated source'
# A page holding this line gets a list of links to all annotated pages in its place.
SOURCE_LIST_MARKER = '<!-- annotated-sources -->'
# Paper symbols and the code names they stand for, for the legend.
PAPER_SYMBOLS = (('h', 'd_model'), ('d', 'n_layers'), ('k', 'kernel_size'), ('p', 'patch_size'))
# Relative links to `x.py` or `x.html` in source prose mean the page of `x`.
SOURCE_LINK_RE = re.compile(r'\]\((?![a-z]+:|/|#)([^)\s#]+)\.(?:py|html)(#[^)\s]*)?\)')
# Lets the search run in a frame where web workers are not allowed (pages opened from disk).
SEARCH_SHIM = ('assets/iframe-worker/shim.js',
               Path(__file__).resolve().parent / 'node_modules' / 'iframe-worker' / 'shim' / 'index.js')
CODE_MARKER = 'LITCODE{}X'
CODE_MARKER_RE = re.compile(r'(?:<p>)?LITCODE(\d+)X(?:</p>)?')


@dataclass
class SourcePage:
    path: Path  # the `.py` file
    text: str  # its contents, read once so that every step sees the same version
    module: str  # dotted module name
    src_uri: str  # the page's path in the site's docs
    parsed: ParsedSource
    title: str
    summary: str
    # Filled in `on_files`:
    markdown: str = ''
    code_html: List[str] = field(default_factory=list)
    line_anchors: Set[str] = field(default_factory=set)
    # Links from code to definitions: (target src_uri, anchor)
    code_links: Set[Tuple[str, str]] = field(default_factory=set)


class _Build:
    """What one build knows: the source pages and the rendered formulas."""

    def __init__(self):
        self.pages: Dict[str, SourcePage] = {}  # by src_uri
        self.by_module: Dict[str, SourcePage] = {}
        # Method names defined by exactly one class: name → (module, qualified name)
        self.unique_methods: Dict[str, Tuple[str, str]] = {}
        self.math_table: Dict[Tuple[str, bool], int] = {}
        self.math_html: List[str] = []

    def add(self, pages: List[SourcePage]):
        methods: Dict[str, List[Tuple[str, str]]] = {}
        for page in pages:
            self.pages[page.src_uri] = page
            self.by_module[page.module] = page
            for d in page.parsed.definitions:
                if d.kind == 'function' and '.' in d.qualname and not d.name.startswith('__'):
                    methods.setdefault(d.name, []).append((page.module, d.qualname))
        self.unique_methods = {name: found[0] for name, found in methods.items() if len(found) == 1}


_build = _Build()


def on_config(config):
    _build.__init__()
    root = Path(config.config_file_path).resolve().parent
    _build.add(_find_sources(root))
    _fill_nav(config.nav, list(_build.pages.values()))
    # The extension keeps a reference to the table, which `on_files` fills.
    config.markdown_extensions.append(MathExtension(_build.math_table))
    return config


def _find_sources(root: Path) -> List[SourcePage]:
    pages = []
    for folder in SOURCE_DIRS:
        # `__init__.py` first: it introduces its package
        files = sorted((root / folder).rglob('*.py'), key=lambda p: (p.parent, p.name != '__init__.py', p.name))
        for path in files:
            rel = path.relative_to(root)
            parts = list(rel.with_suffix('').parts)
            module = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
            text = path.read_text(encoding='utf-8')
            try:
                parsed = parse_source(text, module)
            except ParseError as e:
                raise PluginError(f"{rel}: {e}") from None
            title = str(parsed.front_matter.get('title') or module)
            summary = ' '.join(str(parsed.front_matter.get('summary', '')).split())
            pages.append(SourcePage(path, text, module, rel.with_suffix('.md').as_posix(), parsed, title,
                                    summary))
    return pages


def _fill_nav(nav, pages: List[SourcePage]):
    """Replace the empty `SOURCE_SECTION` of the navigation by the source pages, by folder."""
    for item in nav or []:
        if isinstance(item, dict) and item.get(SOURCE_SECTION) == []:
            by_folder: Dict[str, list] = {}
            for page in pages:
                folder = page.src_uri.rsplit('/', 1)[0]
                by_folder.setdefault(folder, []).append({page.title: page.src_uri})
            item[SOURCE_SECTION] = [{folder: entries} for folder, entries in by_folder.items()]
            return
    raise PluginError(f"mkdocs.yml: the nav needs an empty section `- {SOURCE_SECTION}: []` "
                      f"for the annotated source pages")


def on_files(files: Files, config):
    for page in _build.pages.values():
        files.append(File.generated(config, page.src_uri, content=''))
    anchors = _definition_anchors()
    urls = {uri: files.get_file_from_path(uri).url for uri in _build.pages}
    for page in _build.pages.values():
        _write_page(page, anchors, urls)
        files.get_file_from_path(page.src_uri).content_string = page.markdown
    for site_path, source in katex_assets() + [SEARCH_SHIM]:
        if not source.exists():
            raise PluginError(f"{source} is missing: run `npm ci --prefix docs/tooling`")
        files.append(File.generated(config, site_path, abs_src_path=str(source)))
    _render_math(files)
    return files


def _definition_anchors() -> Dict[Tuple[str, str], str]:
    """(module, qualified name) → src_uri of the page that defines it."""
    return {(p.module, d.qualname): p.src_uri for p in _build.pages.values() for d in p.parsed.definitions}


def _write_page(page: SourcePage, anchors: Dict[Tuple[str, str], str], urls: Dict[str, str]):
    """The page's Markdown, with a code marker per section (the code HTML is kept aside)."""
    parsed = page.parsed
    lexed = lex_lines(page.text)
    by_line: Dict[int, List[Definition]] = {}
    for d in parsed.definitions:
        by_line.setdefault(d.first_line, []).append(d)

    def link(name: str, is_attribute: bool) -> Optional[str]:
        target = _resolve(page, name, is_attribute)
        if target is None or target not in anchors:
            return None
        uri = anchors[target]
        page.code_links.add((uri, target[1]))
        url = get_relative_url(urls[uri], urls[page.src_uri]) if uri != page.src_uri else ''
        return f'{url}#{target[1]}'

    taken: Set[str] = set()  # qualified names that already have their anchor
    slugs: Set[str] = set()
    out = ['---', f'title: {_yaml_str(page.title)}']
    if page.summary:
        out.append(f'description: {_yaml_str(page.summary)}')
    out += ['---', '']
    for i, section in enumerate(parsed.sections):
        section_id, line_anchors = _definition_ids(section, by_line, taken)
        section_id = section_id or _section_slug(section, slugs)
        page.line_anchors.update(line_anchors.values())
        page.code_html.append(render_code(section.code, lexed, link, line_anchors))
        docs = '\n'.join(text for _, text in section.docs)
        docs = SOURCE_LINK_RE.sub(lambda m: f']({m.group(1)}.md{m.group(2) or ""})', docs)
        out += [f'<div class="lit-section" id="{section_id}" markdown="1">',
                '<div class="lit-docs" markdown="1">',
                f'<a class="lit-permalink" href="#{section_id}" title="Link to this section">¶</a>',
                '', docs, '', '</div>',
                '<div class="lit-code" markdown="1">', '', CODE_MARKER.format(i), '', '</div>',
                '</div>', '']
        if i == 0:
            out += [_legend_and_source(page), '']
    page.markdown = '\n'.join(out)


def _definition_ids(section, by_line: Dict[int, List[Definition]],
                    taken: Set[str]) -> Tuple[Optional[str], Dict[int, str]]:
    """
    Anchors of the definitions in a section's code: the section itself takes
    the name of a definition that opens it (so `#ConvMixerLayer` shows the
    class with its description); other definitions anchor their own line.
    """
    first_code = section.code[0][0] if section.code else None
    section_id, line_anchors = None, {}
    for ln, _ in section.code:
        for d in by_line.get(ln, []):
            if d.qualname in taken:
                continue  # defined twice (`if`/`else`): the first one has the anchor
            taken.add(d.qualname)
            if ln == first_code and section_id is None:
                section_id = d.qualname
            else:
                line_anchors[ln] = d.qualname
    return section_id, line_anchors


def _resolve(page: SourcePage, name: str, is_attribute: bool) -> Optional[Tuple[str, str]]:
    """
    The (module, qualified name) that an identifier refers to, when the
    project defines it: a name defined at the top of this module or imported
    from a project module, or a method name that only one class defines.
    """
    if is_attribute:
        return _build.unique_methods.get(name)
    module = page.module
    for _ in range(5):  # follow re-exports such as `from labml_convmixer import convmixer`
        current = _build.by_module.get(module)
        if current is None:
            return None
        if any(d.qualname == name for d in current.parsed.definitions):
            return module, name
        if name not in current.parsed.imports:
            return None
        module, name = current.parsed.imports[name]
    return None


def _section_slug(section, used: Set[str]) -> str:
    """A stable id for a section without a definition: from its first words, or its first line."""
    words = re.findall(r'[a-z0-9]+', ' '.join(t for _, t in section.docs[:2]).lower())
    first_line = (section.docs or section.code)[0][0]
    base = 'sec-' + '-'.join(words[:5]) if words else f'L{first_line}'
    slug, n = base, 2
    while slug in used:
        slug, n = f'{base}-{n}', n + 1
    used.add(slug)
    return slug


def _legend_and_source(page: SourcePage) -> str:
    """The symbol legend (when the file uses the names) and the path of the source file."""
    parts = []
    pairs = [(s, n) for s, n in PAPER_SYMBOLS if n in page.text]
    if pairs:
        items = ' '.join(f'<span class="lit-legend-pair" data-pair="{s}">${s}$ ↔ `{n}`</span>'
                         for s, n in pairs)
        parts.append(f'<div class="lit-legend" markdown="1">**Symbols** {items}</div>')
    parts.append(f'<p class="lit-source">Source: <code>{page.src_uri[:-3]}.py</code></p>')
    return '\n\n'.join(parts)


def _yaml_str(text: str) -> str:
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def source_list() -> str:
    """Markdown list of links to every annotated page, with its summary; links are from the docs root."""
    lines = []
    for page in _build.pages.values():
        summary = f': {page.summary}' if page.summary else ''
        lines.append(f'* [{page.title}]({page.src_uri}) (`{page.src_uri[:-3]}.py`){summary}')
    return '\n'.join(lines)


def _render_math(files: Files):
    """Collect every formula of every page, render them in one go, and fill the table."""
    where: Dict[Tuple[str, bool], str] = {}
    for file in files.documentation_pages():
        for label, first_line, text in _math_sources(file):
            for found in find_math(text):
                where.setdefault(found.formula, f"{label}:{first_line(found.line)}")
    try:
        rendered = render_all(where)
    except KaTeXErrors as e:
        raise PluginError('\n'.join(f"{where[f]}: KaTeX cannot render ${f[0]}$: {msg}"
                                    for f, msg in e.errors.items())) from None
    except MathError as e:
        raise PluginError(str(e)) from None
    for formula, html in rendered.items():
        _build.math_table[formula] = len(_build.math_html)
        _build.math_html.append(html)


def _math_sources(file: File):
    """(file label, line-number mapper, text) for each piece of Markdown of a page."""
    page = _build.pages.get(file.src_uri)
    if page is None:
        text = Path(file.abs_src_path).read_text(encoding='utf-8')
        yield file.src_uri, (lambda n: n), text
        if SOURCE_LIST_MARKER in text:
            yield 'the list of annotated pages', (lambda n: n), source_list()
        return
    label = f'{page.src_uri[:-3]}.py'
    for section in page.parsed.sections:
        numbers = [ln for ln, _ in section.docs]
        yield label, (lambda n, numbers=numbers: numbers[n - 1]), '\n'.join(t for _, t in section.docs)
    yield label + ' (front matter)', (lambda n: 1), page.summary
    yield 'the symbol legend', (lambda n: 1), _legend_and_source(page)


def on_page_markdown(markdown: str, page, config, files):
    if SOURCE_LIST_MARKER in markdown:
        markdown = markdown.replace(SOURCE_LIST_MARKER, source_list())
    return markdown


def on_page_content(html: str, page, config, files):
    source = _build.pages.get(page.file.src_uri)
    if source is not None:
        html = CODE_MARKER_RE.sub(lambda m: source.code_html[int(m.group(1))], html)
        clashes = source.line_anchors & (page.present_anchor_ids or set())
        for anchor in sorted(clashes):
            log.warning(f"{page.file.src_uri}: the anchor #{anchor} of a definition is also a heading's")
        page.present_anchor_ids = (page.present_anchor_ids or set()) | source.line_anchors
    return insert_rendered(html, _build.math_html)


def on_env(env, config, files):
    """Every page has been rendered: check the links from code to definitions."""
    for source in _build.pages.values():
        for uri, anchor in sorted(source.code_links):
            target = files.get_file_from_path(uri)
            if target is None or target.page is None or anchor not in (target.page.present_anchor_ids or ()):
                log.warning(f"{source.src_uri[:-3]}.py: code links to '{uri}#{anchor}', "
                            f"which does not exist")
    return env
