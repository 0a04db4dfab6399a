"""
The source parser on the cases that trip up simpler literate tools: each test
is one case, and checks both what becomes prose and what stays code.
"""

import textwrap

import pytest

from litparse import ParseError, parse_source


def parse(source: str):
    return parse_source(textwrap.dedent(source).lstrip('\n'))


def prose(section) -> str:
    return '\n'.join(text for _, text in section.docs)


def code(section) -> str:
    return '\n'.join(text for _, text in section.code)


def test_assigned_triple_quoted_string_is_code():
    parsed = parse('''
        # The template
        TEMPLATE = """
        # not a comment, and not prose
        """
        x = 1
    ''')
    assert len(parsed.sections) == 1
    assert prose(parsed.sections[0]) == 'The template'
    assert '# not a comment, and not prose' in code(parsed.sections[0])
    assert [ln for ln, _ in parsed.sections[0].code] == [2, 3, 4, 5]


def test_string_statement_after_code_is_not_a_docstring():
    parsed = parse('''
        def f():
            x = 1
            """not the docstring: it is not the first statement"""
            return x
    ''')
    assert len(parsed.sections) == 1
    assert parsed.sections[0].docs == []
    assert 'not the docstring' in code(parsed.sections[0])


def test_f_string_with_hash_and_braces_is_code():
    parsed = parse('''
        # Format it
        label = f"{name} #{index}: {'#' * 3}"
        # Next
        y = 2
    ''')
    assert [prose(s) for s in parsed.sections] == ['Format it', 'Next']
    assert code(parsed.sections[0]) == '''label = f"{name} #{index}: {'#' * 3}"'''


def test_single_and_double_triple_quotes_are_both_docstrings():
    parsed = parse("""
        def f():
            '''Single-quoted docstring.'''
            return 1


        def g():
            \"\"\"Double-quoted docstring.\"\"\"
            return 2
    """)
    assert [prose(s) for s in parsed.sections] == ['Single-quoted docstring.', 'Double-quoted docstring.']
    assert [code(s).split('\n')[0] for s in parsed.sections] == ['def f():', 'def g():']


def test_closing_quotes_on_a_text_line():
    parsed = parse('''
        class A:
            """
            First line.

            Last line, with the quotes."""
            size = 3
    ''')
    assert prose(parsed.sections[0]) == 'First line.\n\nLast line, with the quotes.'
    assert code(parsed.sections[0]) == 'class A:\n    size = 3'
    # Prose keeps the line numbers of the file
    assert parsed.sections[0].docs[0][0] == 3


def test_hash_inside_strings_is_not_a_comment():
    parsed = parse('''
        # Real comment
        url = "https://example.org/#anchor"
        pattern = '# not prose'
    ''')
    assert len(parsed.sections) == 1
    assert prose(parsed.sections[0]) == 'Real comment'
    assert code(parsed.sections[0]) == 'url = "https://example.org/#anchor"\npattern = \'# not prose\''


def test_shebang_and_encoding_lines_stay_code():
    parsed = parse('''
        #!/usr/bin/env python3
        # -*- coding: utf-8 -*-
        """
        ---
        title: Script
        ---
        The introduction.
        """
        import os
    ''')
    assert parsed.front_matter == {'title': 'Script'}
    first = parsed.sections[0]
    assert prose(first) == 'The introduction.'
    assert [ln for ln, _ in first.code] == [1, 2, 9]
    assert code(first).startswith('#!/usr/bin/env python3\n# -*- coding: utf-8 -*-')


def test_decorators_stay_with_their_definition_and_docstring():
    parsed = parse('''
        x = 0


        # Cached, because it is slow
        @functools.lru_cache()
        @staticmethod
        def slow(n):
            """Computes slowly."""
            return n
    ''')
    assert len(parsed.sections) == 2
    section = parsed.sections[1]
    assert prose(section) == 'Cached, because it is slow\n\nComputes slowly.'
    assert code(section) == '@functools.lru_cache()\n@staticmethod\ndef slow(n):\n    return n'
    definition = [d for d in parsed.definitions if d.name == 'slow'][0]
    assert (definition.first_line, definition.line) == (5, 7)


def test_nested_functions_get_qualified_names_and_their_own_sections():
    parsed = parse('''
        class Outer:
            """The outer class."""

            def method(self):
                """The method."""

                def helper():
                    """The helper."""
                    return 1

                return helper()
    ''')
    assert [d.qualname for d in parsed.definitions] == ['Outer', 'Outer.method', 'Outer.method.helper']
    assert [prose(s) for s in parsed.sections] == ['The outer class.', 'The method.', 'The helper.']
    assert code(parsed.sections[2]) == '        def helper():\n            return 1\n\n        return helper()'


def test_blank_comment_line_is_a_paragraph_break_not_code():
    parsed = parse('''
        # First paragraph.
        #
        # Second paragraph.
        x = 1
        # Next section
        y = 2
    ''')
    assert [prose(s) for s in parsed.sections] == ['First paragraph.\n\nSecond paragraph.', 'Next section']
    assert [code(s) for s in parsed.sections] == ['x = 1', 'y = 2']


def test_comments_inside_brackets_stay_in_the_code():
    parsed = parse('''
        SIZES = {
            # small
            'small': 1,
        }
    ''')
    assert parsed.sections[0].docs == []
    assert '    # small' in code(parsed.sections[0])


def test_trailing_comment_stays_on_its_code_line():
    parsed = parse('''
        x = 1  # one
    ''')
    assert code(parsed.sections[0]) == 'x = 1  # one'


def test_docstring_backslashes_follow_python():
    # A raw docstring keeps `\\frac`; an escaped one gives the same text.
    raw = parse('def f():\n    r"""$\\frac{a}{b}$"""\n')
    escaped = parse('def f():\n    """$\\\\frac{a}{b}$"""\n')
    assert prose(raw.sections[0]) == prose(escaped.sections[0]) == '$\\frac{a}{b}$'


def test_front_matter_must_close():
    with pytest.raises(ParseError, match='never closed'):
        parse('"""\n---\ntitle: x\n"""\n')


def test_syntax_error_names_the_line():
    with pytest.raises(ParseError, match='line 2'):
        parse('x = 1\ndef (:\n')


def test_imports_resolve_relative_modules():
    parsed = parse_source('from .model import convmixer as cm\nfrom torch import nn\n', 'pkg.models')
    assert parsed.imports == {'cm': ('pkg.model', 'convmixer'), 'nn': ('torch', 'nn')}


@pytest.mark.parametrize('escape', ['\\times', '\\frac', '\\beta', '\\alpha'])
def test_docstring_turned_into_control_characters_is_an_error(escape):
    # Not raw: Python turns `\t`, `\f`, `\b`, `\a` into control characters
    with pytest.raises(ParseError, match='line 3: control character'):
        parse(f'def f():\n    """\n    Good ${escape}$.\n    """\n')
    # Raw, it is the LaTeX it says
    assert parse(f'x = 1\n\n\ndef f():\n    r"""${escape}$"""\n').sections[1].docs == [(5, f'${escape}$')]
