"""
The project's size rules: a page of the site stays readable in one sitting,
and the model file fits beside other code when copied.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for folder in ('labml_convmixer', 'experiments', 'benchmarks')
                 for p in (ROOT / folder).rglob('*.py') if 'node_modules' not in p.parts)


@pytest.mark.parametrize('path', SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_over_500_lines(path):
    lines = path.read_text(encoding='utf-8').count('\n')
    assert lines <= 500, f"{path.relative_to(ROOT)} has {lines} lines; split it by job"


def test_model_file_lines_fit_88_columns():
    long = [i for i, line in enumerate((ROOT / 'labml_convmixer' / 'model.py').read_text().split('\n'), 1)
            if len(line) > 88]
    assert not long, f"lines over 88 characters: {long}"
