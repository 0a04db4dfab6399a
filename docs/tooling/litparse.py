"""
Split a Python source file into the sections of a literate page.

A section is prose (Markdown) and the code it explains. The prose of a
section is either a run of full-line comments or a docstring; it explains the
code that follows it, up to the next prose. Docstrings of classes and
functions are moved in front of the `class`/`def` line they belong to, so that
a definition and its description sit side by side.

The parser uses `tokenize` and `ast`, never regular expressions on raw lines,
so strings that contain `#` or quotes, f-strings and assigned triple-quoted
strings are code, exactly as Python sees them.
"""

import ast
import io
import re
import textwrap
import tokenize
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

# A line of text together with the line number (from 1) it has in the source file.
Line = Tuple[int, str]

# Python's encoding declaration (PEP 263); it may only be on line 1 or 2.
CODING_RE = re.compile(r'^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+')


@dataclass
class Section:
    """Prose lines (Markdown, comment markers and quotes removed) and code lines."""
    docs: List[Line] = field(default_factory=list)
    code: List[Line] = field(default_factory=list)


@dataclass
class Definition:
    """A class, function or module-level name, and where it is defined."""
    qualname: str  # `ConvMixerLayer.forward`; nested functions: `outer.inner`
    name: str
    kind: str  # 'class', 'function' or 'variable'
    line: int  # line of the `class`/`def` keyword, or of the assignment
    first_line: int  # first decorator line, or `line`


@dataclass
class ParsedSource:
    front_matter: dict
    sections: List[Section]
    definitions: List[Definition]
    # Names imported with `from module import name [as alias]`: alias → (module, name)
    imports: Dict[str, Tuple[str, str]]


class ParseError(ValueError):
    """The file is not valid Python, or its front matter is not valid YAML."""


def parse_source(text: str, module: str = '') -> ParsedSource:
    """
    Parse the source `text` of the module named `module` (dotted, used to
    resolve relative imports).
    """
    text = text.replace('\r\n', '\n').replace('\r', '\n')
    lines = text.split('\n')
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise ParseError(f"line {e.lineno}: {e.msg}") from None

    docstrings = _find_docstrings(tree, lines)
    comments = _find_prose_comments(text, lines, docstrings)
    sections = _group(lines, docstrings, comments)
    front_matter = _take_front_matter(sections)
    return ParsedSource(front_matter, sections, _find_definitions(tree),
                        _find_imports(tree, module))


@dataclass
class _Docstring:
    header_start: int  # first line of the decorators/`def`, or 1 for the module
    start: int  # first line of the string literal
    end: int  # last line of the string literal
    prose: List[Line]


def _find_docstrings(tree: ast.Module, lines: List[str]) -> Dict[int, _Docstring]:
    """Docstrings that stand on lines of their own, keyed by `header_start`."""
    found = {}
    owners = [tree] + [n for n in ast.walk(tree)
                       if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    for owner in owners:
        body = owner.body
        if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            continue
        node = body[0]
        if isinstance(owner, ast.Module):
            header_start = 1
        else:
            header_start = min([owner.lineno] + [d.lineno for d in owner.decorator_list])
            # `def f(): """doc"""` on one line: the string stays with the code.
            if node.lineno <= owner.lineno:
                continue
        prose = _docstring_prose(lines, node)
        if prose is not None:
            found[header_start] = _Docstring(header_start, node.lineno, node.end_lineno, prose)
    return found


def _docstring_prose(lines: List[str], node: ast.Expr) -> Optional[List[Line]]:
    """
    The docstring's value (what `help()` shows: write `r\"\"\"` docstrings
    for math with backslashes), dedented, with line numbers. `None` when
    other code shares its first or last line.
    """
    # `ast` counts columns in UTF-8 bytes
    before = lines[node.lineno - 1].encode()[:node.col_offset].decode()
    after = lines[node.end_lineno - 1].encode()[node.end_col_offset:].decode()
    if before.strip() or (after.strip() and not after.strip().startswith('#')):
        return None
    raw = node.value.value.expandtabs().split('\n')
    # The first line's indentation was the quotes'; dedent the rest together.
    rest = textwrap.dedent('\n'.join(raw[1:])).split('\n') if len(raw) > 1 else []
    text_lines = [raw[0].strip()] + [r.rstrip() for r in rest]
    return _strip_blank_ends([(node.lineno + i, t) for i, t in enumerate(text_lines)])


def _strip_blank_ends(numbered: List[Line]) -> List[Line]:
    while numbered and not numbered[0][1].strip():
        numbered = numbered[1:]
    while numbered and not numbered[-1][1].strip():
        numbered = numbered[:-1]
    return numbered


def _find_prose_comments(text: str, lines: List[str],
                         docstrings: Dict[int, _Docstring]) -> Dict[int, str]:
    """
    Full-line comments that are prose, keyed by line number, with the `#` and
    one following space removed. Comments inside brackets (a long argument
    list, a dictionary) and inside a definition's header stay in the code, so
    that prose never cuts a statement in two. Shebang and encoding lines are code.
    """
    in_header = set()
    for d in docstrings.values():
        if d.header_start > 1:
            in_header.update(range(d.header_start, d.start))
    prose = {}
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in '([{':
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ')]}':
            depth -= 1
        elif tok.type == tokenize.COMMENT:
            row, col = tok.start
            if lines[row - 1][:col].strip() or depth > 0 or row in in_header:
                continue
            if row == 1 and tok.string.startswith('#!'):
                continue
            if row <= 2 and CODING_RE.match(tok.string):
                continue
            body = tok.string[1:]
            prose[row] = body[1:] if body.startswith(' ') else body
    return prose


def _group(lines: List[str], docstrings: Dict[int, _Docstring],
           comments: Dict[int, str]) -> List[Section]:
    """
    Walk the lines in order and cut them into sections. A section ends where
    prose follows code. Blank lines between runs of prose become paragraph
    breaks; a comment line holding only `#` is a paragraph break too.
    """
    sections = [Section()]
    n = len(lines)
    # A trailing newline gives an empty last "line" that is not in the file.
    if n and lines[-1] == '':
        n -= 1
    ln = 1
    while ln <= n:
        current = sections[-1]
        if ln in docstrings:
            doc = docstrings[ln]
            current = _start_prose(sections)
            if current.docs:
                current.docs.append((doc.start, ''))
            current.docs.extend(doc.prose)
            # The header (decorators, `def` line, a long signature) is the code.
            current.code.extend((i, lines[i - 1]) for i in range(doc.header_start, doc.start))
            ln = doc.end + 1
        elif ln in comments:
            current = _start_prose(sections)
            current.docs.append((ln, comments[ln]))
            ln += 1
        elif not lines[ln - 1].strip():
            if current.code:
                current.code.append((ln, ''))
            elif current.docs and current.docs[-1][1] != '':
                current.docs.append((ln, ''))
            ln += 1
        else:
            current.code.append((ln, lines[ln - 1]))
            ln += 1
    for s in sections:
        s.code = _strip_blank_ends(s.code)
        s.docs = _strip_blank_ends(s.docs)
    return [s for s in sections if s.docs or s.code]


def _start_prose(sections: List[Section]) -> Section:
    """The section that prose goes to: a new one when the current one has code."""
    if sections[-1].code:
        sections.append(Section())
    return sections[-1]


def _take_front_matter(sections: List[Section]) -> dict:
    """Remove a `---` YAML block from the top of the first prose and parse it."""
    if not sections or not sections[0].docs or sections[0].docs[0][1].strip() != '---':
        return {}
    docs = sections[0].docs
    for i in range(1, len(docs)):
        if docs[i][1].strip() == '---':
            try:
                meta = yaml.safe_load('\n'.join(t for _, t in docs[1:i])) or {}
            except yaml.YAMLError as e:
                raise ParseError(f"line {docs[0][0]}: front matter is not valid YAML: {e}") from None
            if not isinstance(meta, dict):
                raise ParseError(f"line {docs[0][0]}: front matter must be a YAML mapping")
            sections[0].docs = _strip_blank_ends(docs[i + 1:])
            return meta
    raise ParseError(f"line {docs[0][0]}: front matter opened with '---' is never closed")


def _find_definitions(tree: ast.Module) -> List[Definition]:
    """Classes and functions at any depth, and names assigned at module level."""
    found = []

    def visit(body, prefix):
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + node.name
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                kind = 'class' if isinstance(node, ast.ClassDef) else 'function'
                found.append(Definition(qualname, node.name, kind, node.lineno, first))
                visit(node.body, qualname + '.')
            elif not prefix and isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        found.append(Definition(t.id, t.id, 'variable', node.lineno, node.lineno))
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                # Definitions under `if TYPE_CHECKING:`, `try: import …` and the like
                for child_body in ('body', 'orelse', 'finalbody'):
                    visit(getattr(node, child_body, []), prefix)

    visit(tree.body, '')
    return found


def _find_imports(tree: ast.Module, module: str) -> Dict[str, Tuple[str, str]]:
    imports = {}
    package = module.rsplit('.', 1)[0] if '.' in module else ''
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ''
            if node.level:
                base = package.split('.') if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                source = '.'.join(base + ([source] if source else []))
            for alias in node.names:
                imports[alias.asname or alias.name] = (source, alias.name)
    return imports
