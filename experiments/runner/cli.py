"""
---
title: The command line
summary: >
  A command line derived from a labml Configs class: one flag per setting, its
  type, default and help read from the class itself, values checked before
  anything runs, and user errors as one line.
nav_order: 2
---

# The command line

An experiment's settings are written once, in its `Configs` class:

```python
epochs: int  # T, number of epochs of the schedule
```

Everything the command line needs is already there: the name, the type, the
default (from whichever class in the hierarchy sets it last) and, in the
comment at the end of the line, the help. [`settings_of`](#settings_of) reads
them, [`build_parser`](#build_parser) makes one flag per setting (`--epochs`,
and `--flip/--no-flip` for a `bool`), plus `--set KEY=VALUE` for scripts that
prefer keys, and [`parse_settings`](#parse_settings) turns what was typed into
checked values. Adding a setting to a `Configs` class adds its flag; nothing
is listed twice.

Settings whose default is computed by an `@option` (they depend on the device)
have no default here; `--help` says "device dependent" for them.

Values are checked before any data is read or any folder is made, so a typo
costs a second, not a download. A check is a small function that gets the key
and the parsed value and returns the value to use (it may normalise it, as
[`one_of`](#one_of) lower-cases a name) or raises a [`UserError`](errors.html#UserError).
"""

import argparse
import inspect
import io
import math
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Sequence

from experiments.runner.errors import UserError

# ## Settings of a `Configs` class
#
# A setting is a plain value that a user may change: an `int`, `float`, `str`
# or `bool` attribute with a help comment. Computed configs (the model, the
# data, the optimizer) have other types and are not settings; nor is a plain
# value without a help comment, which an experiment sets for itself (such as
# the trainer's `report_top5`).

SETTING_TYPES = (int, float, str, bool)


@dataclass
class Setting:
    key: str
    type: type
    # `None` when an `@option` computes the value
    default: Any
    help: str

    @property
    def default_text(self) -> str:
        if self.default is None:
            return 'device dependent'
        return repr(self.default) if isinstance(self.default, str) else str(self.default)


def _trailing_comments(cls: type) -> Dict[str, str]:
    """
    The comment at the end of each `name: type = value  # comment` line of
    the class body (indented one level, not inside a method): the help of
    that setting.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {}
    line: List[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            if len(line) >= 3 and line[0].type == tokenize.NAME and line[0].start[1] == 4 \
                    and line[1].string in (':', '=') and line[-1].type == tokenize.COMMENT:
                comments.setdefault(line[0].string, line[-1].string.lstrip('#').strip())
            line = []
        elif token.type not in (tokenize.INDENT, tokenize.DEDENT):
            line.append(token)
    return comments


def settings_of(configs_class: type) -> Dict[str, Setting]:
    """
    The settings of `configs_class` and its bases: the type and help come from
    the class that declares the setting (`name: type  # help`), the default from
    the most derived class that gives a value.
    """
    settings = {}
    for cls in reversed(configs_class.__mro__):
        comments = None
        for key, annotation in cls.__dict__.get('__annotations__', {}).items():
            if annotation not in SETTING_TYPES or key.startswith('_'):
                continue
            if comments is None:
                comments = _trailing_comments(cls)
            if key in comments:
                settings[key] = Setting(key, annotation, None, comments[key])
            else:
                settings.pop(key, None)
    for key, setting in settings.items():
        # labml keeps each attribute as a `ConfigItem`, with its value when it has one
        item = getattr(configs_class, key, None)
        if item is not None and getattr(item, 'has_value', False):
            setting.default = item.value
    return settings


# ## The parser

# A setting whose flag is not its key with dashes (`model` is the computed
# model, so the setting that names one is `model_name`)
FLAG_NAMES = {'device_name': 'device', 'model_name': 'model'}
# What a value is, in the usage line, where its type says too little
METAVARS = {'data_dir': 'DIR', 'device_name': 'DEVICE', 'activation': 'NAME',
            'weights': 'FILE'}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(configs_class: type, prog: str, description: str,
                 checks: Dict[str, Sequence['Check']]) -> argparse.ArgumentParser:
    """
    One flag per setting of `configs_class`, and `--set KEY=VALUE` for any of
    them. The experiment adds its own flags (`--resume` and so on) to the result.
    """
    settings = settings_of(configs_class)
    keys = ', '.join(f'{s.key} ({s.type.__name__}, default {_default_text(s, checks)})'
                     for s in settings.values())
    parser = _Parser(prog=prog, description=description, epilog=f'Keys for --set: {keys}.')
    # The upper end of a range has no flag of its own: `--scale LOW HIGH` sets it
    seconds = {_second_setting(key, checks) for key in settings}
    for s in settings.values():
        if s.key in seconds:
            continue
        flag = '--' + FLAG_NAMES.get(s.key, s.key).replace('_', '-')
        text = f'{s.help} (default {_default_text(s, checks)})'
        if s.type is bool:
            parser.add_argument(flag, dest=s.key, action=argparse.BooleanOptionalAction, help=text)
            continue
        choices = [getattr(c, 'choices', None) for c in checks.get(s.key, ())]
        choices = next((c for c in choices if c), None)
        metavar = METAVARS.get(s.key, s.type.__name__.upper())
        if choices and s.key not in METAVARS:
            metavar = '{' + ','.join(choices) + '}'
        second = _second_setting(s.key, checks)
        if second:
            # timm's spelling of a range: `--scale LOW [HIGH]`
            parser.add_argument(flag, dest=s.key, type=str, nargs='+', help=text,
                                metavar=('LOW', 'HIGH'))
            continue
        parser.add_argument(flag, dest=s.key, type=str, metavar=metavar, help=text)
    parser.add_argument('--set', dest='set_values', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='set any setting (repeatable); the keys are listed below')
    return parser


def parse_value(setting: Setting, text: str) -> Any:
    key, type_ = setting.key, setting.type
    if type_ is bool:
        if text.lower() in ('1', 'true', 'yes', 'on'):
            return True
        if text.lower() in ('0', 'false', 'no', 'off'):
            return False
        raise UserError(f"{key} must be true or false, got {text!r}", 2)
    try:
        return type_(text)
    except ValueError:
        kind = 'an integer' if type_ is int else 'a number'
        raise UserError(f"{key} must be {kind}, got {text!r}", 2) from None


def parse_settings(args: argparse.Namespace, configs_class: type,
                   checks: Dict[str, Sequence['Check']]) -> Dict[str, Any]:
    """
    The settings given on the command line, as `{key: value}`, parsed with the
    setting's type and checked. Settings not given are left out: the defaults
    of `Configs` apply to them.
    """
    settings = settings_of(configs_class)
    texts = {}
    for item in args.set_values:
        if '=' not in item:
            raise UserError(f"--set takes KEY=VALUE, got {item!r}", 2)
        key, text = item.split('=', 1)
        key = key.strip().replace('-', '_')
        if key not in settings:
            raise UserError(f"unknown setting {key!r} in --set (valid keys are listed in --help)", 2)
        texts[key] = text.strip()
    values = {}
    for key, setting in settings.items():
        given = getattr(args, key, None)
        if isinstance(given, list):
            values.update(parse_range(setting, given, settings, checks))
        elif given is not None:
            # A switch arrives as a `bool` already; other flags as text
            values[key] = given if isinstance(given, bool) else parse_value(setting, given)
        elif key in texts:
            values[key] = parse_value(setting, texts[key])
    for key in list(values):
        for check in checks.get(key, ()):
            values[key] = check(key, values[key])
    return values


# ## Checks
#
# Each returns a function `check(key, value) -> value`; a failed check is a
# command-line error (exit code 2) that names the setting and the value.

Check = Callable[[str, Any], Any]


def _refuse(message: str):
    raise UserError(message, 2)


def at_least(n: int) -> Check:
    def check(key, value):
        if value < n:
            _refuse(f"{key} must not be negative, got {value}" if n == 0
                    else f"{key} must be at least {n}, got {value}")
        return value
    return check


def at_most(n: int, why: str = '') -> Check:
    def check(key, value):
        if value > n:
            _refuse(f"{key} must be at most {n}{f' ({why})' if why else ''}, got {value}")
        return value
    return check


def positive(key: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        _refuse(f"{key} must be positive, got {value}")
    return value


def non_negative(key: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        _refuse(f"{key} must be a non-negative number, got {value}")
    return value


def one_of(names: Iterable[str]) -> Check:
    """A name from `names`, in any case; the value becomes lower case."""
    names = sorted(names)

    def check(key, value):
        if value.lower() not in names:
            _refuse(f"unknown {key} {value!r}: choose one of {', '.join(names)}")
        return value.lower()
    check.choices = names
    return check


# ## Defaults that depend on other settings, and ranges
#
# A check may carry two more facts for the parser. `default_is(text)` says what
# `--help` shows as the default of a setting an `@option` computes from other
# settings (without it: "device dependent"). `upper_bound(key)` makes a flag
# take one or two numbers, as timm's `train.py` spells a range
# (`--scale 0.75 1.0`): the first is the setting's own value, the second, when
# given, the setting `key`. That second setting gets no flag of its own (one
# spelling for one value); it stays a setting, in the run's configs and for
# `--set`.


def default_is(text: str) -> Check:
    def check(key, value):
        return value
    check.default_text = text
    return check


def upper_bound(second: str) -> Check:
    def check(key, value):
        return value
    check.second = second
    return check


def _default_text(setting: Setting, checks: Dict[str, Sequence[Check]]) -> str:
    texts = [getattr(c, 'default_text', None) for c in checks.get(setting.key, ())]
    return next((t for t in texts if t), setting.default_text)


def _second_setting(key: str, checks: Dict[str, Sequence[Check]]) -> str:
    seconds = [getattr(c, 'second', None) for c in checks.get(key, ())]
    return next((s for s in seconds if s), '')


def parse_range(setting: Setting, texts: List[str], settings: Dict[str, Setting],
                checks: Dict[str, Sequence[Check]]) -> Dict[str, Any]:
    """`--KEY LOW [HIGH]`: `{key: LOW}`, and `{second: HIGH}` when given."""
    second = _second_setting(setting.key, checks)
    flag = '--' + setting.key.replace('_', '-')
    if len(texts) > 2:
        raise UserError(f"{flag} takes one or two numbers (LOW, or LOW HIGH), "
                        f"got {len(texts)}: {' '.join(texts)}", 2)
    values = {setting.key: parse_value(setting, texts[0])}
    if len(texts) == 2:
        values[second] = parse_value(settings[second], texts[1])
    return values
