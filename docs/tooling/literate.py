"""
The mkdocs hook that turns the Python sources into side-by-side pages.

`mkdocs.yml` names this file under `hooks:`. At build time it

1. finds every `.py` file under `SOURCE_DIRS` and puts its page where the
   `nav` of `mkdocs.yml` names the file or its folder (`litnav.py`,
   `on_config`);
2. writes each page as Markdown: one `lit-section` per prose block, its prose
   in `lit-docs` and its code in `lit-code` (`on_files`), and adds the KaTeX
   style sheet and fonts to the site;
3. renders every formula of the site with one KaTeX process (`on_files`), so a
   bad formula fails the build with its file and line;
4. puts the highlighted code and the KaTeX HTML into the finished pages
   (`on_page_content`), and checks that every link from code to a definition
   lands on an anchor that exists (`on_env`).

Nothing is written next to the sources: the pages exist only in the build.

Front matter
------------

A source file's page takes its settings from a YAML block at the top of its
module docstring, between two `---` lines:

* `title`: the page's title (default: the dotted module name);
* `summary`: one sentence, the page's description in search results and link
  previews, and in the home page's reading order (`<!-- reading-order -->`);
* `nav_order` (integer, optional): the place of the page within its folder,
  where the `nav` names the folder rather than the file. A folder's pages are
  ordered by `__init__.py` first, then `nav_order` ascending (a page without
  it counts as 1000), then file name.

Layout
------

The module docstring is the page's introduction, rendered at the full width
of the page; every later section is prose on the left, its code on the right.
A section without code has no code column. Under the introduction are the
symbol legend and where the file lives: its path, a link that downloads the
file as it was built (a copy of the `.py` sits next to the page, so this
works offline too), a link that downloads the page as a Jupyter notebook
(`litnotebook.py`, made next to it) and, when `mkdocs.yml` sets `repo_url`, a
link to the file in the repository.

The model file's code shows, beside each line that produced a tensor, the
shape it produced when the build ran the model (`litshapes.py`), with a
switch between the traced models under the introduction.

Links from code to definitions
------------------------------

A plain name links to the definition it refers to: defined at the top of the
module, or imported from a project module (re-exports followed). A local
variable or parameter never links. `x.attr` links only where `litparse` knows
the class of `x` (`self` and `cls` in a method, `super()`, a name bound by a
constructor call or an annotation, a class used by name) and that class is a
project class that defines `attr` itself or in a project base class; never by
the attribute's name alone.
"""

import io
import json
import logging
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url
from html import escape, unescape

from litcode import keep_words_whole, lex_lines, render_code
from litnav import NavPage, expand_nav, reading_list
from litnotebook import notebook_json
from litmath import KaTeXErrors, MathError, MathExtension, find_math, insert_rendered, katex_assets, \
    render_all
from litparse import Definition, MemberRef, ParsedSource, ParseError, parse_source
from litsearch import explained_names, section_entries
from litsite import GITHUB_REPO_RE, published_address, relative_not_found_page
from litshapes import TRACED_PAGE, shape_notes, switch_html, trace_all

log = logging.getLogger('mkdocs.hooks.literate')

# Folders (relative to `mkdocs.yml`) whose Python files become pages.
SOURCE_DIRS = ('labml_convmixer', 'experiments', 'benchmarks')
# A page holding this line gets the navigation's reading order in its place, as a
# list of links with each page's summary (`litnav.reading_list`).
READING_LIST_MARKER = '<!-- reading-order -->'
# Paper symbols and the code names they stand for, for the legend.
# `docs/pages/assets/literate.js` pairs the same symbols and names on the page.
PAPER_SYMBOLS = (('h', 'd_model'), ('d', 'n_layers'), ('k', 'kernel_size'), ('p', 'patch_size'),
                 ('σ', 'activation'))
# The TeX of a symbol that is not a plain letter
SYMBOL_TEX = {'σ': r'\sigma'}
# Relative links to `x.py` or `x.html` in source prose mean the page of `x`.
SOURCE_LINK_RE = re.compile(r'\]\((?![a-z]+:|/|#)([^)\s#]+)\.(?:py|html)(#[^)\s]*)?\)')
# Lets the search run in a frame where web workers are not allowed (pages opened from disk).
SEARCH_SHIM = ('assets/iframe-worker/shim.js',
               Path(__file__).resolve().parent / 'node_modules' / 'iframe-worker' / 'shim' / 'index.js')
# Pages without `nav_order` in their front matter
DEFAULT_NAV_ORDER = 1000
# The branch that the repository links of the source pages point into
REPO_BRANCH = 'main'
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
    nav_order: int = DEFAULT_NAV_ORDER
    # Filled in `on_files`:
    markdown: str = ''
    code_html: List[str] = field(default_factory=list)
    line_anchors: Set[str] = field(default_factory=set)
    # HTML after a code line: the shapes traced from the running model (litshapes.py)
    shape_notes: Dict[int, str] = field(default_factory=dict)
    # Links from code to definitions: (target src_uri, anchor)
    code_links: Set[Tuple[str, str]] = field(default_factory=set)
    # Section id → the definition its code belongs to, and the names that its
    # code defines, for the search entries
    section_titles: Dict[str, str] = field(default_factory=dict)
    section_names: Dict[str, List[str]] = field(default_factory=dict)
    # Filled in `on_page_content`: the page's HTML, and its address
    html: str = ''
    url: str = ''


class _Build:
    """What one build knows: the source pages and the rendered formulas."""

    def __init__(self):
        self.pages: Dict[str, SourcePage] = {}  # by src_uri
        self.by_module: Dict[str, SourcePage] = {}
        # (module, qualified name) → definition, over all source pages
        self.definitions: Dict[Tuple[str, str], Definition] = {}
        self.math_table: Dict[Tuple[str, bool], int] = {}
        self.math_html: List[str] = []
        self.repo_url = ''
        self.nav: list = []  # the navigation with the source pages in place
        self.docs_dir = Path('.')

    def add(self, pages: List[SourcePage]):
        for page in pages:
            self.pages[page.src_uri] = page
            self.by_module[page.module] = page
            for d in page.parsed.definitions:
                self.definitions.setdefault((page.module, d.qualname), d)


_build = _Build()


def on_config(config):
    _build.__init__()
    _build.repo_url = (config.repo_url or '').rstrip('/')
    if not config.site_url:
        config.site_url = published_address(_build.repo_url)
    found = GITHUB_REPO_RE.match(_build.repo_url)
    if found and config.repo_name in (None, '', 'GitHub'):
        config.repo_name = f'{found.group(1)}/{found.group(2)}'
    root = Path(config.config_file_path).resolve().parent
    _build.add(_find_sources(root))
    if not config.nav:
        raise PluginError("mkdocs.yml: the annotated pages need a `nav` that names them (see litnav.py)")
    config.nav = expand_nav(config.nav, [NavPage(p.src_uri, p.title) for p in _build.pages.values()])
    _build.nav, _build.docs_dir = config.nav, Path(config.docs_dir)
    # The extension keeps a reference to the table, which `on_files` fills.
    config.markdown_extensions.append(MathExtension(_build.math_table))
    return config


def _find_sources(root: Path) -> List[SourcePage]:
    pages = []
    for folder in SOURCE_DIRS:
        found = []
        for path in (root / folder).rglob('*.py'):
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
            order = parsed.front_matter.get('nav_order', DEFAULT_NAV_ORDER)
            if isinstance(order, bool) or not isinstance(order, int):
                raise PluginError(f"{rel}: front matter `nav_order` must be an integer, not {order!r}")
            found.append(SourcePage(path, text, module, rel.with_suffix('.md').as_posix(), parsed, title,
                                    summary, order))
        pages += sorted(found, key=nav_key)
    return pages


def nav_key(page: SourcePage):
    """The order of pages: by folder; in a folder `__init__.py` first (it introduces
    its package), then `nav_order`, then file name."""
    return page.path.parent, page.path.name != '__init__.py', page.nav_order, page.path.name


def on_files(files: Files, config):
    for page in _build.pages.values():
        files.append(File.generated(config, page.src_uri, content=''))
        # The file itself and its notebook, next to its page, for the download links
        files.append(File.generated(config, source_path(page), content=page.text))
        files.append(File.generated(config, notebook_path(page), content=notebook_json(
            page.parsed, page.text, source_path(page), _repository_file, _build.repo_url)))
        if page.src_uri == TRACED_PAGE:
            page.shape_notes = _trace_shapes(page)
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


def _repository_file(path: str) -> Optional[str]:
    """The address of a source file in the repository, for links in notebooks."""
    if not _build.repo_url or path[:-3] + '.md' not in _build.pages:
        return None
    return f'{_build.repo_url}/blob/{REPO_BRANCH}/{path}'


def _trace_shapes(page: SourcePage) -> Dict[int, str]:
    try:
        return shape_notes(trace_all(page.text, source_path(page)))
    except ImportError as e:
        raise PluginError(f"tracing the shapes of {source_path(page)} needs torch: {e}") from None


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

    def link(name: str, line: int, column: int, is_attribute: bool) -> Optional[str]:
        target = _link_target(page, name, line, column, is_attribute)
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
        docs = '\n'.join(text for _, text in section.docs)
        docs = SOURCE_LINK_RE.sub(lambda m: f']({m.group(1)}.md{m.group(2) or ""})', docs)
        if section.intro:
            # The module docstring: the page's introduction, across the whole width
            intro_id = _section_slug(section, slugs)
            out += [f'<div class="lit-intro" id="{intro_id}" markdown="1">', '', docs, '', '</div>', '',
                    _legend_and_source(page), '']
            docs = ''
        section_id, line_anchors = _definition_ids(section, by_line, taken)
        if not section.code and not docs:
            continue
        section_id = section_id or _section_slug(section if docs else _code_only(section), slugs)
        owner = _enclosing_definition(parsed.definitions, section)
        if owner:
            page.section_titles[section_id] = owner
        names = _defined_names(parsed, section)
        if names:
            page.section_names[section_id] = names
        page.line_anchors.update(line_anchors.values())
        page.code_html.append(render_code(section.code, lexed, link, line_anchors, page.shape_notes)
                              if section.code else '')
        kind = '' if docs and section.code else (' lit-code-only' if section.code else ' lit-docs-only')
        out.append(f'<div class="lit-section{kind}" id="{section_id}" markdown="1">')
        if docs:
            out += ['<div class="lit-docs" markdown="1">',
                    f'<a class="lit-permalink" href="#{section_id}" title="Link to this section" '
                    f'data-search-exclude>¶</a>',
                    '', docs, '', '</div>']
        if section.code:
            out += ['<div class="lit-code" markdown="1">', '', CODE_MARKER.format(len(page.code_html) - 1), '',
                    '</div>']
        out += ['</div>', '']
        if i == 0 and not section.intro:
            out += [_legend_and_source(page), '']
    page.markdown = '\n'.join(out)


def _enclosing_definition(definitions: List[Definition], section) -> Optional[str]:
    """The qualified name of the innermost class or function that the section's first code line is in."""
    if not section.code:
        return None
    first = section.code[0][0]
    inside = [d for d in definitions if d.kind != 'variable' and d.first_line <= first <= d.end_line]
    return max(inside, key=lambda d: d.first_line).qualname if inside else None


def _defined_names(parsed: ParsedSource, section) -> List[str]:
    """The names that the section's code defines: classes, functions, module-level
    names, and instance attributes where they are first assigned."""
    lines = {ln for ln, _ in section.code}
    names = [d.name for d in parsed.definitions if d.line in lines]
    names += [attr for (_, attr), ln in sorted(parsed.attributes.items(), key=lambda item: item[1])
              if ln in lines]
    return list(dict.fromkeys(names))


def _code_only(section):
    """A section without its prose, for naming it after its first line of code."""
    return type(section)(docs=[], code=section.code)


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


def _link_target(page: SourcePage, name: str, line: int, column: int,
                 is_attribute: bool) -> Optional[Tuple[str, str]]:
    """
    The (module, qualified name) that the identifier `name` at `line`,
    `column` of the page's file refers to, when that is a definition of the
    project: see "Links from code to definitions" at the top of this file.
    """
    member = page.parsed.members.get((line, column))
    if member is not None and member.attr == name:
        return resolve_member(page.module, member)
    if is_attribute or (line, column) in page.parsed.locals:
        return None
    return resolve_name(page.module, name)


def resolve_name(module: str, name: str) -> Optional[Tuple[str, str]]:
    """
    The (module, qualified name) that `name`, used at the top level of
    `module`, refers to, when the project defines it: a name defined in that
    module (a qualified name such as `Outer.Inner` too) or imported from a
    project module, following re-exports such as `from labml_convmixer import
    convmixer`.
    """
    for _ in range(5):
        current = _build.by_module.get(module)
        if current is None:
            return None
        if (module, name) in _build.definitions:
            return module, name
        if name not in current.parsed.imports:
            return None
        module, name = current.parsed.imports[name]
    return None


def resolve_member(module: str, member: MemberRef) -> Optional[Tuple[str, str]]:
    """
    The definition of `member.attr` in the class `member.owner` (a name in
    `module`) or in its project base classes, in method resolution order;
    `None` when the owner is not a project class or nothing of the project
    defines the attribute (it may be inherited from `nn.Module`, say).
    """
    owner = resolve_name(module, member.owner)
    if owner is None or _build.definitions[owner].kind != 'class':
        return None
    classes = _project_mro(owner)
    for cls_module, cls in classes[1:] if member.via_super else classes:
        found = (cls_module, f'{cls}.{member.attr}')
        if found in _build.definitions:
            return found
    return None


def _project_mro(cls: Tuple[str, str]) -> List[Tuple[str, str]]:
    """A class and its bases that are project classes, depth first (enough for single inheritance)."""
    order: List[Tuple[str, str]] = []
    pending = [cls]
    while pending:
        current = pending.pop(0)
        if current in order:
            continue
        order.append(current)
        definition = _build.definitions.get(current)
        scope = current[1].rsplit('.', 1)[0] + '.' if '.' in current[1] else ''
        for base in definition.bases if definition else []:
            # A base is a name in the class's module (or, for a nested class, its outer class)
            found = resolve_name(current[0], scope + base) if scope else None
            found = found or resolve_name(current[0], base)
            if found is not None and _build.definitions[found].kind == 'class':
                pending.append(found)
    return order


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
    """
    The symbol legend (when the file's code uses the names), the switch of
    the traced shapes (on the traced page) and where the file lives: its
    path, download links to the copy of the file and to its notebook in the
    site, and the file in the repository (when `repo_url` is set).
    """
    parts = []
    names = _code_names(page.text)
    pairs = [(s, n) for s, n in PAPER_SYMBOLS if n in names]
    if pairs:
        items = ' '.join(f'<span class="lit-legend-pair" data-pair="{s}">${SYMBOL_TEX.get(s, s)}$ ↔ `{n}`</span>'
                         for s, n in pairs)
        parts.append(f'<div class="lit-legend" markdown="1">**Symbols** {items}</div>')
    if page.shape_notes:
        parts.append(switch_html())
    path = source_path(page)
    links = [f'<a class="lit-download" href="{escape(path.rsplit("/", 1)[-1])}" download '
             f'title="Download {escape(path)}">download</a>',
             f'<a class="lit-notebook" href="{escape(notebook_path(page).rsplit("/", 1)[-1])}" download '
             f'title="Download {escape(path)} as a Jupyter notebook">download notebook</a>']
    if _build.repo_url:
        links.append(f'<a class="lit-repo" href="{escape(_build.repo_url)}/blob/{REPO_BRANCH}/{escape(path)}" '
                     f'title="{escape(path)} in the repository">view in the repository</a>')
    parts.append(f'<p class="lit-source">Source: <code>{escape(path)}</code> '
                 f'({", ".join(links)})</p>')
    return '\n\n'.join(parts)


def _code_names(text: str) -> Set[str]:
    """The identifiers of a file's code (not its prose)."""
    try:
        return {t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.NAME}
    except (tokenize.TokenError, SyntaxError):
        return set()


def source_path(page: SourcePage) -> str:
    """The file's path in the repository, which is also where its copy is in the site."""
    return page.src_uri[:-3] + '.py'


def notebook_path(page: SourcePage) -> str:
    """Where the page's notebook is in the site: next to the copy of the file."""
    return page.src_uri[:-3] + '.ipynb'


def _yaml_str(text: str) -> str:
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def source_list() -> str:
    """The reading order of the navigation as Markdown links from the docs root (`litnav.reading_list`)."""
    return reading_list(_build.nav, _build.docs_dir,
                        lambda uri: _build.pages[uri].summary if uri in _build.pages else None)


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
        if READING_LIST_MARKER in text:
            yield 'the reading order', (lambda n: n), source_list()
        return
    label = f'{page.src_uri[:-3]}.py'
    for section in page.parsed.sections:
        numbers = [ln for ln, _ in section.docs]
        yield label, (lambda n, numbers=numbers: numbers[n - 1]), '\n'.join(t for _, t in section.docs)
    yield label + ' (front matter)', (lambda n: 1), page.summary
    yield 'the symbol legend', (lambda n: 1), _legend_and_source(page)


def on_page_markdown(markdown: str, page, config, files):
    if READING_LIST_MARKER in markdown:
        markdown = markdown.replace(READING_LIST_MARKER, source_list())
    return markdown


def on_page_content(html: str, page, config, files):
    html = keep_words_whole(html)
    source = _build.pages.get(page.file.src_uri)
    if source is not None:
        html = CODE_MARKER_RE.sub(lambda m: source.code_html[int(m.group(1))], html)
        clashes = source.line_anchors & (page.present_anchor_ids or set())
        for anchor in sorted(clashes):
            log.warning(f"{page.file.src_uri}: the anchor #{anchor} of a definition is also a heading's")
        page.present_anchor_ids = (page.present_anchor_ids or set()) | source.line_anchors
        html = insert_rendered(html, _build.math_html)
        source.html, source.url = html, page.url
        return html
    return insert_rendered(html, _build.math_html)


def on_post_build(config):
    """
    One search entry per section of each annotated page, in place of the
    theme's (see litsearch.py). Runs after the search plugin has written the
    index, and before the offline plugin copies it into a script.
    """
    path = Path(config.site_dir) / 'search' / 'search_index.json'
    if not path.exists():
        return
    index = json.loads(path.read_text(encoding='utf-8'))
    replaced = {source.url: source for source in _build.pages.values() if source.url}
    docs = [doc for doc in index['docs'] if doc['location'].split('#')[0] not in replaced]
    for url, source in replaced.items():
        docs += section_entries(source.html, url, source.title, source.section_titles, source.section_names,
                                explained_names(source.title, source.summary))
    index['docs'] = docs
    path.write_text(json.dumps(index, ensure_ascii=False, separators=(',', ':')), encoding='utf-8')


def on_env(env, config, files):
    """Every page has been rendered: check the links from code to definitions."""
    for source in _build.pages.values():
        for uri, anchor in sorted(source.code_links):
            target = files.get_file_from_path(uri)
            if target is None or target.page is None or anchor not in (target.page.present_anchor_ids or ()):
                log.warning(f"{source.src_uri[:-3]}.py: code links to '{uri}#{anchor}', "
                            f"which does not exist")
    return env


# The page description as the theme writes it: mkdocs-material puts the text
# in the attribute without escaping it, so a `"` in it ends the attribute.
META_DESCRIPTION_RE = re.compile(r'(<meta name="description" content=")(.*?)(">)', re.DOTALL)
# The repository link of the header, which the theme's script would fill with
# facts (stars, forks) fetched from the GitHub API: the site loads nothing from
# another host, so the link stays a plain link.
SOURCE_COMPONENT_RE = re.compile(r'(<a href="[^"]*"[^>]*class="md-source") data-md-component="source"')


def _fix_theme_html(html: str) -> str:
    html = META_DESCRIPTION_RE.sub(lambda m: m.group(1) + escape(unescape(m.group(2))) + m.group(3), html, count=1)
    return SOURCE_COMPONENT_RE.sub(r'\1', html)


def on_post_page(output: str, page, config):
    return _fix_theme_html(output)


def on_post_template(output_content: str, template_name: str, config):
    # Static templates of the theme, such as `404.html`
    if template_name == '404.html':
        output_content = relative_not_found_page(output_content, config.site_url)
    return _fix_theme_html(output_content) if template_name.endswith('.html') else output_content
