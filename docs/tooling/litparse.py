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
from typing import Dict, List, Optional, Set, Tuple

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
    # The prose is the module docstring: the page's introduction
    intro: bool = False


@dataclass
class Definition:
    """A class, function or module-level name, and where it is defined."""
    qualname: str  # `ConvMixerLayer.forward`; nested functions: `outer.inner`
    name: str
    kind: str  # 'class', 'function' or 'variable'
    line: int  # line of the `class`/`def` keyword, or of the assignment
    first_line: int  # first decorator line, or `line`
    # Classes: the bases given by a plain name (`class A(B)` gives `['B']`), in order
    bases: List[str] = field(default_factory=list)
    end_line: int = 0  # last line of the definition (of the statement, for a variable)


@dataclass(frozen=True)
class MemberRef:
    """
    `receiver.attr` where the receiver is known to be a class, or an instance
    of one: `owner` is that class's name in the module's scope (a class of the
    module, such as `ConvMixer` or `Outer.Inner`, or an imported name), and
    `via_super` says that the receiver is `super()`, so that the lookup starts
    at the bases of `owner`.
    """
    owner: str
    attr: str
    via_super: bool = False


@dataclass
class ParsedSource:
    front_matter: dict
    sections: List[Section]
    definitions: List[Definition]
    # Names imported with `from module import name [as alias]`: alias → (module, name)
    imports: Dict[str, Tuple[str, str]]
    # `x.attr` whose receiver `x` has a known class, by the (line, column) of
    # `attr` (columns count characters from 0); see `_References`
    members: Dict[Tuple[int, int], MemberRef] = field(default_factory=dict)
    # (line, column) of names that are not module-level names: local variables,
    # parameters, keyword arguments, so that they never link to a definition
    locals: Set[Tuple[int, int]] = field(default_factory=set)
    # Instance attributes, `self.attr = ...` in a method: (class, attr) → the
    # line of the first assignment
    attributes: Dict[Tuple[str, str], int] = field(default_factory=dict)


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
    references = _References(lines)
    references.scan(tree)
    return ParsedSource(front_matter, sections, _find_definitions(tree),
                        _find_imports(tree, module), references.members, references.locals,
                        references.attribute_lines)


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


# What `\t`, `\f`, `\b`, `\a` (as in `\times`, `\frac`, `\beta`, `\alpha`) become in a
# docstring that is not raw; no prose holds them.
CONTROL_RE = re.compile(r'[\x00-\x08\x0b-\x1f\x7f]|\t')


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
    value = node.value.value
    control = CONTROL_RE.search(value)
    if control:
        raise ParseError(f"line {node.lineno + value.count(chr(10), 0, control.start())}: control character "
                         f"{control.group()!r} in a docstring; one with backslashes (LaTeX) must be a raw "
                         f"string, r\"\"\"...\"\"\"")
    raw = value.expandtabs().split('\n')
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
            current.intro = current.intro or doc.header_start == 1
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
                bases = [b.id for b in node.bases if isinstance(b, ast.Name)] \
                    if isinstance(node, ast.ClassDef) else []
                found.append(Definition(qualname, node.name, kind, node.lineno, first, bases, node.end_lineno))
                visit(node.body, qualname + '.')
            elif not prefix and isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        found.append(Definition(t.id, t.id, 'variable', node.lineno, node.lineno,
                                                end_line=node.end_lineno))
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


# What a name is bound to, as far as links need it: `('instance', C)` for an
# instance of the class named `C` in the module's scope, `('class', C)` for the
# class itself (or, at module level, whatever the module-level name `C` is),
# `None` when not known.
_Type = Optional[Tuple[str, str]]
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Scope:
    """The names bound in a module, class, function or comprehension body."""

    def __init__(self, parent: Optional['_Scope'], kind: str, cls: Optional[str] = None):
        # Functions do not see the names of the class bodies around them.
        while parent is not None and parent.kind == 'class' and kind != 'class':
            parent = parent.parent
        self.parent, self.kind = parent, kind
        self.cls = cls  # a method's class (for `super()`), or a class body's own qualified name
        self.sources: Dict[str, list] = {}  # name → fixed types and value expressions
        self.not_local: Set[str] = set()  # `global` and `nonlocal` names
        self.attributes: list = []  # `(target, source)` of `self.attr = ...` in a method

    def bind(self, name: str, source):
        self.sources.setdefault(name, []).append(source)

    def find(self, name: str) -> Optional['_Scope']:
        scope = self
        while scope is not None:
            if name in scope.sources and name not in scope.not_local:
                return scope
            scope = scope.parent
        return None


class _References:
    """
    Which `x.attr` refer to a member of a known class, and which names are
    local, by scope analysis of the `ast` (no guessing by name).

    A receiver has a known class when it is

    * `self` (or `cls`) in a method, the class the method is defined in;
    * `super()` in a method: the bases of that class;
    * a name bound, in one way only, by a constructor call `x = C(...)`, by an
      annotation `x: C` (parameters included, also `Optional[C]`), or by
      aliasing such a name; a module-level name, such as an imported or
      defined class `C` in `C.method`;
    * `self.attr` where every assignment `self.attr = ...` in the class's
      methods (or a class-level annotation) gives the same class;
    * the result of calling a function of the module whose return annotation
      is a class, `spec = get_spec(name)` with `def get_spec(...) -> Spec`.

    Whether `C` is a class of the project, and which definition `attr` is,
    is for the caller to decide, who knows the other modules.
    """

    def __init__(self, lines: List[str]):
        self.lines = lines
        self.members: Dict[Tuple[int, int], MemberRef] = {}
        self.locals: Set[Tuple[int, int]] = set()
        # class qualified name → attribute → the types assigned to `self.attr`
        self.class_attrs: Dict[str, Dict[str, List[_Type]]] = {}
        self.attribute_lines: Dict[Tuple[str, str], int] = {}
        self.record = False
        self._busy: Set[int] = set()
        self.returns: Dict[str, _Type] = {}
        self._handled: Set[int] = set()

    def scan(self, tree: ast.Module):
        # Functions of the module that say which class they return
        self.returns = {node.name: _annotation_type(node.returns) for node in tree.body
                        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None}
        # First pass: the types of instance attributes; second: the references.
        for record in (False, True):
            self.record = record
            module = _Scope(None, 'module')
            self._collect(module, tree.body, '')
            self._visit_body(module, tree.body, '')

    # -- positions

    def _col(self, lineno: int, byte_col: int) -> int:
        line = self.lines[lineno - 1]
        return byte_col if line.isascii() else len(line.encode()[:byte_col].decode(errors='ignore'))

    def _mark_local(self, node):
        if self.record:
            self.locals.add((node.lineno, self._col(node.lineno, node.col_offset)))

    # -- binding

    def _collect(self, scope: _Scope, body, prefix: str):
        """Bind the names that the statements `body` bind in `scope`."""
        self._collect_names(scope, body, prefix)
        # Instance attributes once the names are known: `self.head = head` needs `head`
        for target, source in scope.attributes:
            self._self_attribute(scope, target, source)

    def _collect_names(self, scope: _Scope, body, prefix: str):
        self._handled: Set[int] = set()  # `Name` targets bound by the statement they belong to
        for node in _own_nodes(body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope.bind(node.name, ('class', node.name) if scope.kind == 'module' else None)
            elif isinstance(node, ast.ClassDef):
                qualname = prefix + node.name
                top = scope.kind == 'module' or scope.kind == 'class'
                scope.bind(node.name, ('class', qualname) if top else None)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name = (alias.asname or alias.name).split('.')[0]
                    # `from x import C` is a module-level name as far as links go
                    scope.bind(name, ('class', name) if isinstance(node, ast.ImportFrom) else None)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                scope.not_local.update(node.names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    source = ('expr', node.value) if isinstance(target, (ast.Name, ast.Attribute)) else None
                    self._bind_target(scope, target, source)
                    if scope.kind == 'class' and isinstance(target, ast.Name) and not self.record:
                        # a class attribute: `head = Head()` in the class body
                        attrs = self.class_attrs.setdefault(scope.cls, {})
                        attrs.setdefault(target.id, []).append(self._value_type(scope, node.value))
            elif isinstance(node, ast.AnnAssign):
                if isinstance(node.target, ast.Name):
                    scope.bind(node.target.id, _annotation_type(node.annotation))
                    self._handled.add(id(node.target))
                else:
                    self._bind_target(scope, node.target, _annotation_type(node.annotation))
                if scope.kind == 'class' and isinstance(node.target, ast.Name) and not self.record:
                    attrs = self.class_attrs.setdefault(scope.cls, {})
                    attrs.setdefault(node.target.id, []).append(_annotation_type(node.annotation))
            elif isinstance(node, ast.NamedExpr):
                scope.bind(node.target.id, ('expr', node.value))
                self._handled.add(id(node.target))
            elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.withitem, ast.ExceptHandler,
                                   ast.Delete)):
                targets = {ast.AugAssign: lambda n: [n.target], ast.For: lambda n: [n.target],
                           ast.AsyncFor: lambda n: [n.target], ast.withitem: lambda n: [n.optional_vars],
                           ast.Delete: lambda n: n.targets}
                if isinstance(node, ast.ExceptHandler):
                    if node.name:
                        scope.bind(node.name, None)
                else:
                    for target in targets[type(node)](node):
                        if target is not None:
                            self._bind_target(scope, target, None)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in self._handled:
                # anything else that binds a name (match patterns, ...)
                scope.bind(node.id, None)
            elif hasattr(ast, 'MatchAs') and isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                scope.bind(node.name, None)

    def _bind_target(self, scope: _Scope, target, source):
        self._handled.add(id(target))
        if isinstance(target, ast.Name):
            scope.bind(target.id, source)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._bind_target(scope, element, None)
        elif isinstance(target, ast.Starred):
            self._bind_target(scope, target.value, None)
        elif isinstance(target, ast.Attribute):
            scope.attributes.append((target, source))

    def _self_attribute(self, scope: _Scope, target, source):
        """`self.attr = value` in a method: one more type for the class's attribute `attr`."""
        if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
            return
        owner = self._type_of_name(scope, target.value.id)
        if owner is None or owner[0] != 'instance' or scope.cls is None or owner[1] != scope.cls:
            return
        value = self._value_type(scope, source[1]) if source and source[0] == 'expr' else source
        if not self.record:
            self.class_attrs.setdefault(scope.cls, {}).setdefault(target.attr, []).append(value)
            key = (scope.cls, target.attr)
            self.attribute_lines[key] = min(self.attribute_lines.get(key, target.lineno), target.lineno)

    # -- types

    def _type_of_name(self, scope: _Scope, name: str) -> _Type:
        found = scope.find(name)
        if found is None:
            return ('class', name)  # a builtin, or a name this file does not bind
        types = set()
        for source in found.sources[name]:
            if isinstance(source, tuple) and source and source[0] == 'expr':
                key = id(source[1])
                if key in self._busy:
                    return None
                self._busy.add(key)
                try:
                    types.add(self._value_type(found, source[1]))
                finally:
                    self._busy.discard(key)
            else:
                types.add(source)
        return types.pop() if len(types) == 1 else None

    def _value_type(self, scope: _Scope, value) -> _Type:
        """The type of the value of an expression, when it is a class's instance or the class."""
        if isinstance(value, ast.Name):
            return self._type_of_name(scope, value.id)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            called = self._type_of_name(scope, value.func.id)
            if called is None or called[0] != 'class':
                return None
            if scope.find(value.func.id) is not None and scope.find(value.func.id).kind == 'module' \
                    and called[1] in self.returns:
                return self.returns[called[1]]
            return ('instance', called[1])
        if isinstance(value, ast.Attribute):
            owner = self._receiver(scope, value.value)
            if owner is not None and not owner.via_super:
                types = set(self.class_attrs.get(owner.owner, {}).get(value.attr, [None]))
                return types.pop() if len(types) == 1 else None
        return None

    def _receiver(self, scope: _Scope, value) -> Optional[MemberRef]:
        """The class of the receiver `value` of an attribute, as a `MemberRef` without `attr`."""
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == 'super'
                and not value.args and scope.kind == 'function' and scope.cls is not None
                and scope.find('super') is None):
            return MemberRef(scope.cls, '', True)
        found = self._value_type(scope, value)
        return MemberRef(found[1], '') if found is not None else None

    # -- visiting

    def _visit_body(self, scope: _Scope, body, prefix: str):
        for node in body:
            self._visit(scope, node, prefix)

    def _visit(self, scope: _Scope, node, prefix: str):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self._visit_function(scope, node, prefix)
            return
        if isinstance(node, ast.ClassDef):
            for child in node.decorator_list + node.bases + node.keywords:
                self._visit(scope, child, prefix)
            inner = _Scope(scope, 'class', prefix + node.name)
            self._collect(inner, node.body, prefix + node.name + '.')
            self._visit_body(inner, node.body, prefix + node.name + '.')
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inner = _Scope(scope, 'comprehension')
            for generator in node.generators:
                self._bind_target(inner, generator.target, None)
            for child in ast.iter_child_nodes(node):
                self._visit(inner, child, prefix)
            return
        if isinstance(node, ast.Name):
            found = scope.find(node.id)
            if found is not None and found.kind != 'module':
                self._mark_local(node)
        elif isinstance(node, ast.keyword) and node.arg is not None and hasattr(node, 'lineno'):
            self._mark_local(node)
        elif isinstance(node, ast.Attribute) and self.record:
            owner = self._receiver(scope, node.value)
            if owner is not None:
                line = node.end_lineno
                col = self._col(line, node.end_col_offset) - len(node.attr)
                self.members[(line, col)] = MemberRef(owner.owner, node.attr, owner.via_super)
        for child in ast.iter_child_nodes(node):
            self._visit(scope, child, prefix)

    def _visit_function(self, scope: _Scope, node, prefix: str):
        args = node.args
        # Evaluated where the function is defined
        for child in (getattr(node, 'decorator_list', []) + args.defaults + [d for d in args.kw_defaults if d]):
            self._visit(scope, child, prefix)
        method_of = scope.cls if scope.kind == 'class' else None
        inner = _Scope(scope, 'function', method_of)
        positional = args.posonlyargs + args.args
        decorators = {d.id for d in getattr(node, 'decorator_list', []) if isinstance(d, ast.Name)}
        for i, arg in enumerate(positional + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]):
            if arg.annotation is not None:
                self._visit(scope, arg.annotation, prefix)
            kind = _annotation_type(arg.annotation) if arg.annotation is not None else None
            if i == 0 and method_of is not None and arg in positional and 'staticmethod' not in decorators:
                kind = ('class' if 'classmethod' in decorators else 'instance', method_of)
            if arg in (args.vararg, args.kwarg):
                kind = None
            inner.bind(arg.arg, kind)
            self._mark_local(arg)
        if getattr(node, 'returns', None) is not None:
            self._visit(scope, node.returns, prefix)
        body = node.body if isinstance(node.body, list) else [node.body]
        self._collect(inner, body, prefix + getattr(node, 'name', '<lambda>') + '.')
        self._visit_body(inner, body, prefix + getattr(node, 'name', '<lambda>') + '.')


def _own_nodes(body):
    """Every node of the statements `body` that belongs to their scope: nested scopes are yielded, not entered."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _SCOPES):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _annotation_type(annotation) -> _Type:
    """`C`, `'C'`, `Optional[C]` and `C | None` give an instance of `C`."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode='eval').body
        except SyntaxError:
            return None
    if isinstance(annotation, ast.Name):
        return ('instance', annotation.id)
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name) \
            and annotation.value.id == 'Optional':
        return _annotation_type(annotation.slice)
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        sides = [s for s in (annotation.left, annotation.right)
                 if not (isinstance(s, ast.Constant) and s.value is None)]
        return _annotation_type(sides[0]) if len(sides) == 1 else None
    return None
