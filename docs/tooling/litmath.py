"""
Math at build time: `$…$` and `$$…$$` in Markdown become KaTeX HTML + MathML.

The build first collects every formula of every page (`find_math`) and
renders them all with one Node.js process (`render_all`), so that a bad
formula stops the build with its file and line before any page is written.
While Markdown is converted, `MathExtension` swaps each formula for a
marker element; `insert_rendered` swaps the markers for the KaTeX HTML in the
finished page.
"""

import json
import re
import subprocess
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from markdown import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.util import AtomicString

TOOLING = Path(__file__).resolve().parent
KATEX_DIST = TOOLING / 'node_modules' / 'katex' / 'dist'

# Display math first, so that `$$` is not read as two empty inline formulas.
# Inline math follows Pandoc's rule: no space after the opening `$`, none
# before the closing one, and no digit right after it (so "$5 and $6" is text).
DISPLAY_RE = r'(?<![\\$])\$\$(?P<display>.+?)\$\$'
INLINE_RE = r'(?<![\\$])\$(?P<inline>[^\s$](?:[^$]*?[^\s\\$])?)\$(?!\d)'
MATH_RE = re.compile(f'{DISPLAY_RE}|{INLINE_RE}', re.DOTALL)
# Code is never math: fenced blocks and backtick spans are blanked out before searching.
FENCE_RE = re.compile(r'^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$', re.DOTALL | re.MULTILINE)
CODE_SPAN_RE = re.compile(r'(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)', re.DOTALL)
# The marker `MathExtension` leaves in the HTML: `<span class="lit-math" data-math="N">`
MARKER_RE = re.compile(r'<span class="lit-math" data-math="(\d+)">.*?</span>', re.DOTALL)

Formula = Tuple[str, bool]  # (TeX, display mode)


class MathError(Exception):
    """KaTeX could not render a formula, or KaTeX is not installed."""


@dataclass
class Found:
    formula: Formula
    line: int  # line number within the searched text, from 1


def _blank(match: re.Match) -> str:
    # Keep newlines, so that line numbers after the blanked code stay right.
    return re.sub(r'[^\n]', ' ', match.group(0))


def find_math(markdown: str) -> List[Found]:
    """Every formula in `markdown`, outside code, with the line it starts on."""
    text = CODE_SPAN_RE.sub(_blank, FENCE_RE.sub(_blank, markdown))
    found = []
    for m in MATH_RE.finditer(text):
        display = m.group('display') is not None
        tex = m.group('display') if display else m.group('inline')
        found.append(Found((_normalize(tex), display), text.count('\n', 0, m.start()) + 1))
    return found


def _normalize(tex: str) -> str:
    # Markdown re-indents a formula that wraps inside a list item; spacing in
    # TeX does not matter, so formulas are compared with it collapsed.
    return ' '.join(tex.split())


def render_all(formulas: Iterable[Formula]) -> Dict[Formula, str]:
    """
    Render the formulas with one `node` process. Raises `MathError` with one
    line per formula KaTeX rejects; the caller adds where it was found.
    """
    formulas = list(dict.fromkeys(formulas))
    if not formulas:
        return {}
    if not (KATEX_DIST / 'katex.min.css').exists():
        raise MathError(f"KaTeX is not installed in {TOOLING}: run `npm ci --prefix docs/tooling`")
    request = json.dumps([{'tex': t, 'display': d} for t, d in formulas])
    try:
        done = subprocess.run(['node', str(TOOLING / 'katex_batch.js')], input=request,
                              capture_output=True, text=True, encoding='utf-8', cwd=TOOLING)
    except FileNotFoundError:
        raise MathError("`node` was not found: install Node.js to render math") from None
    if done.returncode != 0:
        raise MathError(f"KaTeX failed: {done.stderr.strip()}")
    results = json.loads(done.stdout)
    errors = {f: r['error'] for f, r in zip(formulas, results) if 'error' in r}
    if errors:
        raise KaTeXErrors(errors)
    return {f: _mark_up(r['html']) for f, r in zip(formulas, results)}


class KaTeXErrors(MathError):
    def __init__(self, errors: Dict[Formula, str]):
        super().__init__(f"{len(errors)} formulas KaTeX cannot render")
        self.errors = errors


def _mark_up(katex_html: str) -> str:
    """
    Index each formula once: the MathML copy stays out of the search index
    (it holds no `span`, which the search plugin's exclusion needs), the visual
    copy is indexed. Also tag the paper symbols ($h$, $d$, $k$, $p$, $\\sigma$) for the legend.
    """
    katex_html = katex_html.replace('<span class="katex-mathml">',
                                    '<span class="katex-mathml" data-search-exclude>')
    return re.sub(r'<span class="mord mathnormal"((?: style="[^"]*")?)>([hdkpσ])</span>',
                  r'<span class="mord mathnormal"\1 data-paper-sym="\2">\2</span>', katex_html)


class _MathPattern(InlineProcessor):
    """Replaces a formula by a marker that holds its number in the build-wide table."""

    def __init__(self, table: Dict[Formula, int]):
        super().__init__(MATH_RE.pattern)
        self.compiled_re = re.compile(MATH_RE.pattern, re.DOTALL)
        self.table = table

    def handleMatch(self, m, data):
        display = m.group('display') is not None
        tex = _normalize(m.group('display') if display else m.group('inline'))
        if (tex, display) not in self.table:
            # The pre-pass reads the same text with the same pattern, so this
            # means the two disagree: a bug in this file, not in the page.
            raise MathError(f"formula ${tex}$ was not rendered in advance")
        el = etree.Element('span', {'class': 'lit-math', 'data-math': str(self.table[(tex, display)])})
        # The TeX stays as text, so that a heading with math gets a readable
        # table-of-contents entry and anchor.
        el.text = AtomicString(tex)
        return el, m.start(0), m.end(0)


class MathExtension(Extension):
    """Python-Markdown extension: marks up formulas found in `table`."""

    def __init__(self, table: Dict[Formula, int]):
        super().__init__()
        self.table = table

    def extendMarkdown(self, md):
        # After code spans (190), before escapes (180), links and emphasis.
        md.inlinePatterns.register(_MathPattern(self.table), 'lit_math', 185)


def insert_rendered(page_html: str, rendered: List[str]) -> str:
    """Swap the markers for the KaTeX HTML (`rendered[N]` for marker N)."""
    return MARKER_RE.sub(lambda m: rendered[int(m.group(1))], page_html)


def katex_assets() -> List[Tuple[str, Path]]:
    """The KaTeX style sheet and the fonts it names, as (site path, file) pairs."""
    if not (KATEX_DIST / 'katex.min.css').exists():
        raise MathError(f"KaTeX is not installed in {TOOLING}: run `npm ci --prefix docs/tooling`")
    assets = [('assets/katex/katex.min.css', KATEX_DIST / 'katex.min.css')]
    # Browsers that run the site all read woff2, the first format the CSS offers.
    for font in sorted((KATEX_DIST / 'fonts').glob('*.woff2')):
        assets.append((f'assets/katex/fonts/{font.name}', font))
    return assets

