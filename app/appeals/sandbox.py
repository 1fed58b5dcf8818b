"""The Jinja2 sandbox letters are rendered in: what a letter needs, and bounded.

Jinja's own sandbox keeps a template from reaching Python internals, but not from
loading other files (`{% include %}`, `{% extends %}`), nor from spending minutes of CPU
and gigabytes of memory: `{{ lipsum(10**6) }}`, `"x" * 10**9`, nested loops over
`range(10**5)`. A letter is rendered on every signature, so here a template may use only
what letters need (variables, conditions, loops, a short list of filters and string
methods) and every render has a budget of operations and of characters, counted as it
runs, so it works in any thread. A template that asks for more is refused when the
appeal is saved (422 naming the letter and language); one that runs out of budget on a
signature's longer data fails as a LetterBudgetExceeded.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, TemplateError, nodes, pass_eval_context
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

# A letter, and any string made on the way to one, is at most this long.
CHARS_MAX = 100_000
# Attribute lookups, calls, operators, loop turns and pieces of output in one render. The
# seed appeals' letters take about 100; a loop over a 2,000-character message ~10,000.
OPERATIONS_MAX = 200_000
RANGE_MAX = 1_000
# Integers from ** and * stay below this many bits (10**300 is about 1,000).
INT_BITS_MAX = 4_096

# Tags a letter never needs: they load other files or define functions that can recurse.
_REFUSED_TAGS: dict[type[nodes.Node], str] = {
    nodes.Extends: "{% extends %}",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
}
# Filters that only select, reshape or shorten what they are given.
_FILTERS = {
    "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
    "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr", "sort",
    "string", "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
}  # fmt: skip
# String methods whose result is no longer than the string.
_STR_METHODS = {
    "capitalize", "casefold", "count", "endswith", "find", "isalnum", "isalpha", "isdecimal",
    "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip",
    "partition", "removeprefix", "removesuffix", "rfind", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper",
}  # fmt: skip


class LetterBudgetExceeded(TemplateError):
    """A render needed more operations or characters than a letter may."""


class RefusedTemplate(TemplateError):
    """A template that uses what letters may not."""


@dataclass
class _Budget:
    operations: int = OPERATIONS_MAX

    def spend(self, count: int = 1) -> None:
        self.operations -= count
        if self.operations < 0:
            raise LetterBudgetExceeded(
                f"the letter takes more than {OPERATIONS_MAX} steps to write"
            )


_budget: ContextVar[_Budget | None] = ContextVar("letter_budget", default=None)


def _spend(count: int = 1) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend(count)


def _sized(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > CHARS_MAX:
        raise LetterBudgetExceeded(f"the letter would be longer than {CHARS_MAX} characters")
    return value


def render(blocks: Callable[[], Iterable[str]]) -> str:
    """The text `blocks()` yields, within one render's budget of operations and size."""
    token = _budget.set(_Budget())
    try:
        size = 0
        parts: list[str] = []
        for part in blocks():
            _spend()
            size += len(part)
            if size > CHARS_MAX:
                raise LetterBudgetExceeded(
                    f"the letter would be longer than {CHARS_MAX} characters"
                )
            parts.append(part)
        return "".join(parts)
    finally:
        _budget.reset(token)


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > RANGE_MAX:
        raise RefusedTemplate(f"range() may give at most {RANGE_MAX} numbers")
    return numbers


def _iterate(value: Iterable[Any]) -> Iterator[Any]:
    """What a `{% for %}` loops over, one operation a turn."""
    for item in value:
        _spend()
        yield item


def _concat(values: Iterable[Any]) -> str:
    """`a ~ b`, refusing a result longer than a letter may be."""
    parts = [str(v) for v in values]
    if sum(map(len, parts)) > CHARS_MAX:
        raise LetterBudgetExceeded(f"the letter would be longer than {CHARS_MAX} characters")
    return "".join(parts)


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    if len(d) * len(items) > CHARS_MAX:
        raise LetterBudgetExceeded(f"the letter would be longer than {CHARS_MAX} characters")
    return str(_sized(FILTERS["join"](eval_ctx, items, d, attribute)))


@pass_eval_context
def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    _check_replace(str(s), str(old), str(new), count)
    return str(FILTERS["replace"](eval_ctx, s, old, new, count))


def _check_replace(s: str, old: str, new: str, count: int | None = -1) -> None:
    times = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    if len(s) + times * max(0, len(new) - len(old)) > CHARS_MAX:
        raise LetterBudgetExceeded(f"the letter would be longer than {CHARS_MAX} characters")


def _bits(value: Any) -> int:
    return value.bit_length() if isinstance(value, int) else 0


class _Bounded(NodeTransformer):
    """Refuses what letters may not use; makes each turn of a loop and each `~` go through
    the filters above, which count them against the budget."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def visit_Template(self, node: nodes.Template) -> nodes.Node:
        for refused in node.find_all(tuple(_REFUSED_TAGS)):
            raise RefusedTemplate(f"{_REFUSED_TAGS[type(refused)]} is not allowed in a letter")
        return self.generic_visit(node)

    def _filter(self, value: nodes.Node, name: str, like: nodes.Node) -> nodes.Filter:
        made = nodes.Filter(value, name, [], [], None, None)  # value: an expression
        made.set_lineno(like.lineno)
        made.set_environment(self.environment)
        return made

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise RefusedTemplate("recursive loops are not allowed in a letter")
        self.generic_visit(node)  # (changes the node in place)
        node.iter = self._filter(node.iter, "_outcry_iterate", node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes).set_lineno(node.lineno)
        return self._filter(items, "_outcry_concat", node)


class LetterSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with only what letters need, bounded (see the module)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals = {"range": _range}
        self.filters = {name: FILTERS[name] for name in _FILTERS}
        self.filters.update(
            join=_join, replace=_replace, _outcry_iterate=_iterate, _outcry_concat=_concat
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        template: nodes.Template = _Bounded(self).visit(super()._parse(source, name, filename))
        return template

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend()
        if isinstance(obj, str) and attribute not in _STR_METHODS | {"replace", "join"}:
            # Refused here, not when called: Jinja hands out str.format wrapped.
            raise RefusedTemplate(f"str.{attribute}() is not allowed in a letter")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend()
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            method = getattr(__obj, "__name__", "")
            if method == "replace":
                _check_replace(owner, *args, **kwargs)
            elif method == "join":
                items = list(args[0]) if args else []
                if len(owner) * len(items) > CHARS_MAX:
                    raise LetterBudgetExceeded(
                        f"the letter would be longer than {CHARS_MAX} characters"
                    )
                args = (items,)
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        _spend()
        if operator_ == "*":
            for text, times in ((left, right), (right, left)):
                if isinstance(text, str | list | tuple) and isinstance(times, int):
                    if len(text) * times > CHARS_MAX:
                        raise LetterBudgetExceeded(
                            f"the letter would be longer than {CHARS_MAX} characters"
                        )
            if _bits(left) + _bits(right) > INT_BITS_MAX:
                raise LetterBudgetExceeded("a number in the letter is too large")
        elif operator_ == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
                if right * math.log2(abs(left)) > INT_BITS_MAX:
                    raise LetterBudgetExceeded("a number in the letter is too large")
        elif operator_ == "%" and isinstance(left, str):
            # A width or precision ("%999999999s") would build the long string first.
            widths = "".join(c if c.isdigit() else " " for c in left).split()
            if "*" in left or any(len(w) > 4 for w in widths):
                raise LetterBudgetExceeded("a width in the letter is too large")
        result = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}[
            operator_
        ](left, right)
        return _sized(result)
