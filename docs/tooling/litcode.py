"""
The code column: syntax-highlighted lines with their original line numbers,
and identifiers marked so that the page can link and highlight them.

The whole file is lexed once with Pygments (so that a string spanning many
lines is coloured right wherever a section cuts it), then split into lines.
"""

import re
from html import escape
from typing import Callable, Dict, List, Optional, Tuple

from pygments.lexers import PythonLexer
from pygments.token import STANDARD_TYPES, Name, Operator, Text, Whitespace

# One coloured piece of a line: Pygments token type and its text.
Piece = Tuple[object, str]
# `link(name, line, column, is_attribute)` → the address of the definition, or
# `None`; `column` counts characters from 0, `is_attribute` is true after a `.`
Linker = Callable[[str, int, int, bool], Optional[str]]


def lex_lines(text: str) -> Dict[int, List[Piece]]:
    """Pygments tokens of `text`, split at newlines, keyed by line number (from 1)."""
    lexer = PythonLexer(stripnl=False, ensurenl=True)
    lines: Dict[int, List[Piece]] = {1: []}
    ln = 1
    for ttype, value in lexer.get_tokens(text.replace('\r\n', '\n')):
        parts = value.split('\n')
        for i, part in enumerate(parts):
            if i > 0:
                ln += 1
                lines[ln] = []
            if part:
                lines[ln].append((ttype, part))
    return lines


def _css_class(ttype) -> str:
    """The short class Pygments themes (and mkdocs-material) style, such as `k` or `nf`."""
    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    return STANDARD_TYPES[ttype]


def render_code(code: List[Tuple[int, str]], lexed: Dict[int, List[Piece]],
                link: Linker, anchors: Dict[int, str], notes: Optional[Dict[int, str]] = None) -> str:
    """
    HTML for the lines `code` (line number, text): a `pre` block as
    mkdocs-material styles it, so that it gets the copy button.

    * Every identifier has `data-sym` with its name, for highlighting.
    * Identifiers that `link` resolves become links to their definitions.
    * A line whose number is in `anchors` gets that `id`.
    * Line numbers are in a `data-ln` attribute, shown with CSS, so they are
      neither copied with the code nor found by search. The `pre` says how
      many digits the file's line numbers have (`--lit-digits`), so that the
      gutter has the same width in every block of a page.
    * A line that starts with spaces says how many (`--lit-indent`), so that
      the style sheet can indent the continuation of a wrapped line under it.
    * A line whose number is in `notes` ends with that HTML (a traced shape).
    """
    digits = len(str(max(lexed) if lexed else 1))
    out = []
    for ln, text in code:
        anchor = f' id="{escape(anchors[ln])}"' if ln in anchors else ''
        indent = len(text) - len(text.lstrip(' '))
        style = f' style="--lit-indent:{indent}"' if indent and text.strip() else ''
        body = _render_line(ln, lexed.get(ln, []), link) + (notes or {}).get(ln, '')
        out.append(f'<span class="lit-line"{anchor}{style}><span class="lit-ln" data-ln="{ln}"></span>'
                   f'{body}</span>')
    return (f'<div class="highlight"><pre style="--lit-digits:{digits}"><code>' + '\n'.join(out)
            + '\n</code></pre></div>')


def _render_line(ln: int, pieces: List[Piece], link: Linker) -> str:
    html = []
    previous = None  # the last token that is not white space
    column = 0
    for ttype, value in pieces:
        text = escape(value, quote=False)
        cls = _css_class(ttype)
        if ttype in Name and ttype is not Name.Builtin.Pseudo:
            is_attribute = previous is not None and previous[0] in Operator and previous[1] == '.'
            # The name in `def name` or `class name` is the definition itself.
            is_definition = ttype in (Name.Function, Name.Class)
            href = None if is_definition else link(value, ln, column, is_attribute)
            sym = f' data-sym="{escape(value)}"'
            if href:
                html.append(f'<a class="lit-ref {cls}" href="{escape(href)}"{sym}>{text}</a>')
            else:
                html.append(f'<span class="{cls}"{sym}>{text}</span>')
        elif cls:
            html.append(f'<span class="{cls}">{text}</span>')
        else:
            html.append(text)
        if not (ttype in Text or ttype in Whitespace) or value.strip():
            previous = (ttype, value)
        column += len(value)
    return ''.join(html)



# Inline code of the prose: `<code>` with text only (code blocks are in `<pre>`)
INLINE_CODE_RE = re.compile(r'<code>([^<]*)</code>')
# A word longer than this may still break (a phone must not scroll the page for it)
LONGEST_WHOLE_WORD = 40


def keep_words_whole(html: str) -> str:
    """
    Inline code that holds hyphens (`--eval-only`, `python -m pip`) with each
    word that has one in a `lit-nobr` span, so that the browser wraps it
    between its words, never at a hyphen: a flag split over two lines reads as
    two and copies wrong. The text stays the same.
    """
    def whole(match) -> str:
        text = match.group(1)
        start = match.start()
        if '-' not in text or html.rfind('<pre', 0, start) > html.rfind('</pre>', 0, start):
            return match.group(0)
        words = re.split(r'(\s+)', text)
        return '<code>' + ''.join(f'<span class="lit-nobr">{w}</span>'
                                  if '-' in w and len(w) <= LONGEST_WHOLE_WORD else w for w in words) + '</code>'

    return INLINE_CODE_RE.sub(whole, html)
