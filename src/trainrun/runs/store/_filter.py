"""The filter language of ``ls_runs(filter=...)`` and ``trainrun ls --filter``.

A small, safe expression language over the columns of the runs table::

    eval_accuracy > 0.8 and flag_dropout < 0.3
    status == "failed" or not (metric_loss <= 0.5)
    flag_activation in ["relu", "tanh"] and eval_auc != null

Grammar (lowest precedence first)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := value [ ("==" | "!=" | "<" | "<=" | ">" | ">=") value
                        | ["not"] "in" "[" value ("," value)* "]" ]
    value      := COLUMN | NUMBER | STRING | true | false | null | "(" expr ")"

The text is split by a hand-written tokenizer and parsed by recursive descent:
nothing is ever passed to ``eval``. Evaluation is vectorised over a pandas
DataFrame. A missing value (a run without that metric) makes every comparison
false, ``!=`` included; ``== null`` and ``!= null`` test for missing values.
A column alone (``flag_use_bn``) is true where its value is truthy.

A filter is at most ``MAX_FILTER_LENGTH`` characters and nests parentheses and
``not`` at most ``MAX_DEPTH`` deep: beyond that it is a FilterError, never a
RecursionError (a filter may come from a URL of the dashboard).

>>> from trainrun.runs.store._filter import parse_filter
>>> parse_filter("eval_accuracy > 0.8 and status == 'completed'").columns
['eval_accuracy', 'status']
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trainrun.exceptions import FilterError

if TYPE_CHECKING:  # pandas is imported when a filter is applied, not when it is parsed
    import pandas as pd

__all__ = ["Filter", "parse_filter"]

MAX_FILTER_LENGTH = 10_000
MAX_DEPTH = 64
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "none"}
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


class _Frozen:
    """What ``@dataclass(frozen=True)`` gave these records (fields in order, defaults,
    equality, hash, repr, no assignment), without importing dataclasses, which imports
    inspect: about 7 ms of every ``trainrun ls`` that filters."""

    __slots__: tuple[str, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments")
        values = dict(zip(names, args, strict=False))  # fewer args than fields: defaults
        for key, value in kwargs.items():
            if key not in names or key in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected argument {key!r}")
            values[key] = value
        for name in names:
            if name not in values:
                if name not in self._defaults:
                    raise TypeError(f"{type(self).__name__}() is missing argument {name!r}")
                values[name] = self._defaults[name]
            object.__setattr__(self, name, values[name])

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a {type(self).__name__}")


class Token(_Frozen):
    __slots__ = ("kind", "text", "pos", "value")
    _defaults = {"value": None}
    kind: str  # "number" | "string" | "name" | "keyword" | "op" | "end"
    text: str
    pos: int
    value: Any


def _caret(expr: str, pos: int) -> str:
    return f"\n  {expr}\n  {' ' * pos}^"


def _error(expr: str, pos: int, message: str) -> FilterError:
    err = FilterError(f"{message}{_caret(expr, pos)}")
    err.position = pos  # type: ignore[attr-defined]
    return err


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def tokenize(expr: str) -> list[Token]:
    """Split ``expr`` into tokens; FilterError at the first character that starts none."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            ch = expr[pos]
            if ch in "\"'":
                raise _error(expr, pos, f"Unterminated string: add the closing {ch}.")
            if ch == "=":
                raise _error(expr, pos, "Use '==' to compare for equality, not '='.")
            if ch in "&|!":
                word = {"&": "and", "|": "or", "!": "not"}[ch]
                raise _error(expr, pos, f"Unexpected {ch!r}: write '{word}' instead.")
            raise _error(expr, pos, f"Unexpected character {ch!r} in the filter.")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "number":
            # "a-1" would read as name "a" then number "-1"; a sign is only part of a
            # number where a value may start, which the parser checks.
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            tokens.append(Token("number", text, pos, value))
        elif kind == "string":
            tokens.append(Token("string", text, pos, _unquote(text)))
        elif kind == "name":
            low = text.lower()
            if low in KEYWORDS:
                value = {"true": True, "false": False, "null": None, "none": None}.get(low)
                tokens.append(Token("keyword", low, pos, value))
            else:
                tokens.append(Token("name", text, pos, text))
        elif kind == "op":
            tokens.append(Token("op", text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(expr)))
    return tokens


# ---------------------------------------------------------------- syntax tree


class Column(_Frozen):
    __slots__ = ("name", "pos")
    name: str
    pos: int


class Literal(_Frozen):
    __slots__ = ("value", "pos")
    value: Any
    pos: int


class Compare(_Frozen):
    __slots__ = ("op", "left", "right", "pos")
    op: str
    left: Any
    right: Any
    pos: int


class InList(_Frozen):
    __slots__ = ("operand", "values", "negate", "pos")
    operand: Any
    values: tuple[Literal, ...]
    negate: bool
    pos: int


class BoolOp(_Frozen):
    __slots__ = ("op", "items")
    op: str  # "and" | "or"
    items: tuple[Any, ...]


class Not(_Frozen):
    __slots__ = ("item",)
    item: Any


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0
        self.depth = 0

    def enter(self, tok: Token) -> None:
        """One level deeper (a '(' or a 'not'); FilterError past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(
                tok,
                f"The filter nests parentheses and 'not' more than {MAX_DEPTH} deep: "
                "write it flatter (join conditions with 'and' / 'or').",
            )

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.tok
        return tok.kind == kind and (not texts or tok.text in texts)

    def fail(self, tok: Token, message: str) -> FilterError:
        return _error(self.expr, tok.pos, message)

    def describe(self, tok: Token) -> str:
        return "the end of the filter" if tok.kind == "end" else repr(tok.text)

    def parse(self) -> Any:
        if self.at("end"):
            raise self.fail(
                self.tok, "The filter is empty: write a condition such as 'eval_accuracy > 0.8'."
            )
        node = self.or_expr()
        if not self.at("end"):
            tok = self.tok
            hint = (
                " (join conditions with 'and' or 'or')"
                if tok.kind in ("name", "string", "number")
                else ""
            )
            raise self.fail(tok, f"Unexpected {self.describe(tok)}{hint}.")
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.at("keyword", "or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.not_expr()]
        while self.at("keyword", "and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Any:
        if self.at("keyword", "not"):
            self.enter(self.take())
            node = Not(self.not_expr())
            self.depth -= 1
            return node
        return self.comparison()

    def comparison(self) -> Any:
        left = self.value()
        tok = self.tok
        if tok.kind == "op" and tok.text in COMPARISONS:
            self.take()
            right = self.value()
            if isinstance(left, Literal) and isinstance(right, Literal):
                raise self.fail(tok, "This comparison has no column on either side.")
            if tok.text in ("<", "<=", ">", ">=") and any(
                isinstance(side, Literal) and (side.value is None or isinstance(side.value, bool))
                for side in (left, right)
            ):
                raise self.fail(
                    tok, f"'{tok.text}' needs a number, a string or a column, not true/false/null."
                )
            return Compare(tok.text, left, right, tok.pos)
        negate = False
        if self.at("keyword", "not") and self.tokens[self.i + 1].text == "in":
            self.take()
            negate = True
        if self.at("keyword", "in"):
            in_tok = self.take()
            return InList(left, self.literal_list(), negate, in_tok.pos)
        if negate:  # pragma: no cover - guarded by the lookahead above
            raise self.fail(tok, "Expected 'in' after 'not'.")
        if isinstance(left, Literal):
            raise self.fail(
                self.tokens[self.i - 1],
                "A value alone is not a condition: compare it with a column.",
            )
        return left

    def literal_list(self) -> tuple[Literal, ...]:
        if not self.at("op", "["):
            raise self.fail(
                self.tok, f"Expected '[' to start a list after 'in', got {self.describe(self.tok)}."
            )
        self.take()
        values: list[Literal] = []
        while True:
            tok = self.tok
            node = self.value()
            if not isinstance(node, Literal):
                raise self.fail(
                    tok, "A list after 'in' holds only values (numbers, strings, true/false/null)."
                )
            values.append(node)
            if self.at("op", ","):
                self.take()
                continue
            if self.at("op", "]"):
                self.take()
                return tuple(values)
            raise self.fail(
                self.tok, f"Expected ',' or ']' in the list, got {self.describe(self.tok)}."
            )

    def value(self) -> Any:
        tok = self.tok
        if tok.kind == "name":
            self.take()
            return Column(tok.text, tok.pos)
        if tok.kind in ("number", "string"):
            self.take()
            return Literal(tok.value, tok.pos)
        if tok.kind == "keyword" and tok.text in ("true", "false", "null", "none"):
            self.take()
            return Literal(tok.value, tok.pos)
        if tok.kind == "op" and tok.text == "(":
            self.enter(self.take())
            node = self.or_expr()
            if not self.at("op", ")"):
                raise self.fail(
                    self.tok,
                    f"Expected ')' to close the '(' at position {tok.pos}, got {self.describe(self.tok)}.",
                )
            self.take()
            self.depth -= 1
            return node
        if tok.kind == "keyword":
            raise self.fail(tok, f"Expected a column or a value, got the keyword {tok.text!r}.")
        raise self.fail(tok, f"Expected a column or a value, got {self.describe(tok)}.")


# ---------------------------------------------------------------- evaluation


def _walk_columns(node: Any, out: list[Column]) -> None:
    if isinstance(node, Column):
        out.append(node)
    elif isinstance(node, Compare):
        _walk_columns(node.left, out)
        _walk_columns(node.right, out)
    elif isinstance(node, InList):
        _walk_columns(node.operand, out)
    elif isinstance(node, BoolOp):
        for item in node.items:
            _walk_columns(item, out)
    elif isinstance(node, Not):
        _walk_columns(node.item, out)


class Filter:
    """A parsed filter: ``columns`` it reads, ``apply(df)`` gives a boolean mask."""

    def __init__(self, expr: str) -> None:
        if not isinstance(expr, str):
            raise FilterError(
                f"A filter must be a string such as 'eval_accuracy > 0.8'. Received: filter={expr!r}"
            )
        if len(expr) > MAX_FILTER_LENGTH:
            raise FilterError(
                f"The filter is {len(expr):,} characters long; the limit is "
                f"{MAX_FILTER_LENGTH:,}. Shorten it (an 'in [...]' list is shorter than "
                f"a chain of 'or'). Received: filter={expr[:60]!r}..."
            )
        self.expr = expr
        self.tree = _Parser(expr).parse()
        refs: list[Column] = []
        _walk_columns(self.tree, refs)
        self._refs = refs
        self.columns = list(dict.fromkeys(c.name for c in refs))

    def __repr__(self) -> str:
        return f"Filter({self.expr!r})"

    def check_columns(self, available: Sequence[str]) -> None:
        """FilterError at the first column not in ``available``, naming the nearest ones."""
        have = set(available)
        for ref in self._refs:
            if ref.name in have:
                continue
            near = difflib.get_close_matches(ref.name, list(available), n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            shown = ", ".join(list(available)[:40])
            raise _error(
                self.expr,
                ref.pos,
                f"Unknown column {ref.name!r} in the filter.{hint} Columns: {shown}",
            )

    def apply(self, df: pd.DataFrame) -> pd.Series:
        """Evaluate over ``df``: a boolean Series aligned with it (missing values give False)."""
        self.check_columns(list(df.columns))
        return _as_mask(self._eval(self.tree, df), df)

    # each node evaluates to a Series (a column or a mask) or a Literal
    def _eval(self, node: Any, df: pd.DataFrame) -> Any:
        if isinstance(node, Column):
            return df[node.name]
        if isinstance(node, Literal):
            return node
        if isinstance(node, BoolOp):
            masks = [_as_mask(self._eval(item, df), df) for item in node.items]
            out = masks[0]
            for m in masks[1:]:
                out = (out & m) if node.op == "and" else (out | m)
            return out
        if isinstance(node, Not):
            return ~_as_mask(self._eval(node.item, df), df)
        if isinstance(node, InList):
            return self._in_list(node, df)
        if isinstance(node, Compare):
            return self._compare(node, df)
        raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover

    def _in_list(self, node: InList, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        operand = self._eval(node.operand, df)
        if isinstance(operand, Literal):
            raise _error(self.expr, node.pos, "The left side of 'in' must be a column.")
        values = [lit.value for lit in node.values]
        present = operand.notna()
        mask = operand.isin([v for v in values if v is not None]) & present
        if any(v is None for v in values):
            mask = mask | ~present
        if node.negate:
            # a missing value is "not in" a list only when null is not listed
            mask = ~mask if any(v is None for v in values) else (~mask & present)
        return pd.Series(mask, index=df.index, dtype=bool)

    def _compare(self, node: Compare, df: pd.DataFrame) -> pd.Series:
        import pandas as pd

        left = self._eval(node.left, df)
        right = self._eval(node.right, df)
        op = node.op
        if isinstance(left, Literal):  # put the column on the left: 0.8 < x  ->  x > 0.8
            left, right = right, left
            op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
        if isinstance(right, Literal) and right.value is None:
            if op not in ("==", "!="):  # pragma: no cover - rejected by the parser
                raise _error(self.expr, node.pos, f"'{op}' cannot compare with null.")
            missing = left.isna()
            return missing if op == "==" else ~missing
        if not isinstance(right, Literal) and not isinstance(right, pd.Series):
            right = _as_mask(right, df)  # a parenthesised condition compared with a column
        if isinstance(right, Literal):
            value = _coerce_literal(left, right, self.expr)
            valid = left.notna()
            result = _safe_compare(left, value, op)
        else:
            valid = left.notna() & right.notna()
            result = _safe_compare(left, right, op)
        return pd.Series(result, index=df.index).fillna(False).astype(bool) & valid


_OPS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _coerce_literal(column: pd.Series, lit: Literal, expr: str) -> Any:
    """A string literal compared with a time column means a time: parse it as UTC."""
    import pandas as pd

    value = lit.value
    if isinstance(value, str) and isinstance(column.dtype, pd.DatetimeTZDtype):
        try:
            stamp = pd.Timestamp(value)
        except ValueError as exc:
            raise _error(
                expr,
                lit.pos,
                f"{value!r} is not a date or time (try '2026-11-27' or '2026-11-27T10:15:00').",
            ) from exc
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return value


def _safe_compare(left: pd.Series, right: Any, op: str) -> Any:
    import numpy as np
    import pandas as pd

    fn = _OPS[op]
    try:
        return fn(left, right)
    except TypeError:
        pass
    # mixed types (a flag that is a number in some runs and a string in others):
    # compare value by value, and a pair that cannot be ordered is simply false
    rights = right.tolist() if isinstance(right, pd.Series) else [right] * len(left)
    out = np.zeros(len(left), dtype=bool)
    for i, (a, b) in enumerate(zip(left.tolist(), rights, strict=True)):
        try:
            out[i] = bool(fn(a, b))
        except TypeError:
            out[i] = False
    return out


def _as_mask(value: Any, df: pd.DataFrame) -> pd.Series:
    """A Series of truth values; a bare column counts where it is truthy, missing is false."""
    import pandas as pd

    if isinstance(value, Literal):  # pragma: no cover - the parser keeps values out of here
        return pd.Series(bool(value.value), index=df.index)
    if value.dtype == bool:
        return value
    if value.dtype == object:
        return value.map(lambda v: bool(v) if v is not None and v == v else False).astype(bool)
    return value.fillna(0).astype(bool)


def parse_filter(expr: str | Filter) -> Filter:
    """Parse a filter expression (FilterError, with a caret under the bad token, if invalid)."""
    return expr if isinstance(expr, Filter) else Filter(expr)
