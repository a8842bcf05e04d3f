"""The condition language of a rule's ``when:``: grammar (lark), syntax tree, name and type checks.

Example: ``unit_value_ratio < 30% and hs_chapter in ('61', '62') and not aeo``.
Semantics are SQL's three-valued logic: a comparison with a missing value is *unknown*, ``and``/``or``/
``not`` follow Kleene's tables, and a rule hits only when its condition is *true*. ``is missing`` is
the one test that looks at missing values. Both compilers (sql.py, python.py) implement exactly this.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from sciti.risk.rules.errors import RuleSyntaxError

TYPES = ("number", "text", "bool", "date")

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> not_
         | predicate
?predicate: sum COMPARATOR sum -> compare
          | sum _IN "(" item ("," item)* ")" -> in_list
          | sum _NOT _IN "(" item ("," item)* ")" -> not_in_list
          | sum _BETWEEN sum _AND sum -> between
          | sum _IS _MISSING -> is_missing
          | sum _IS _NOT _MISSING -> is_not_missing
          | sum _STARTS _WITH STRING -> starts_with
          | sum _CONTAINS STRING -> contains
          | sum
?sum: product (ADDOP product)*
?product: unary (MULOP unary)*
?unary: "-" unary -> neg
      | atom
?atom: literal
     | NAME -> name
     | "(" or_expr ")"
?item: literal
     | "-" NUMBER -> neg_number
     | "-" PERCENT -> neg_percent
?literal: NUMBER -> number
        | PERCENT -> percent
        | STRING -> string
        | _TRUE -> true
        | _FALSE -> false
        | _DATE STRING -> date

_OR: "or"i
_AND: "and"i
_NOT: "not"i
_IN: "in"i
_BETWEEN: "between"i
_IS: "is"i
_MISSING: "missing"i
_STARTS: "starts"i
_WITH: "with"i
_CONTAINS: "contains"i
_TRUE: "true"i
_FALSE: "false"i
_DATE: "date"i
COMPARATOR: "<=" | ">=" | "!=" | "<>" | "==" | "=" | "<" | ">"
ADDOP: "+" | "-"
MULOP: "*" | "/"
PERCENT.2: /[0-9]+(\.[0-9]+)?%/
NUMBER: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /'([^'\\]|\\.)*'/ | /"([^"\\]|\\.)*"/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
COMMENT: /#[^\n]*/
%import common.WS
%ignore WS
%ignore COMMENT
"""

# Words shown in "expected ..." messages instead of lark's terminal names.
_FRIENDLY = {
    "NAME": "a field name",
    "NUMBER": "a number",
    "PERCENT": "a percentage",
    "STRING": "a quoted text",
    "COMPARATOR": "a comparison (=, !=, <, <=, >, >=)",
    "ADDOP": "+ or -",
    "MULOP": "* or /",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "MINUS": "-",
    "_OR": "or",
    "_AND": "and",
    "_NOT": "not",
    "_IN": "in",
    "_BETWEEN": "between",
    "_IS": "is",
    "_MISSING": "missing",
    "_STARTS": "starts",
    "_WITH": "with",
    "_CONTAINS": "contains",
    "_TRUE": "true",
    "_FALSE": "false",
    "_DATE": "date",
    "$END": "the end of the condition",
}


# --- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True)
class Literal(Node):
    value: Any  # float | str | bool | date
    type: str


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str  # = != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class InList(Node):
    operand: Node
    values: tuple[Literal, ...]
    negated: bool


@dataclass(frozen=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node


@dataclass(frozen=True)
class IsMissing(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True)
class TextTest(Node):
    op: str  # starts_with | contains (both ignore case)
    operand: Node
    text: str


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    operand: Node


def _pos(item: Any) -> tuple[int, int]:
    if isinstance(item, Token):
        return item.line or 1, item.column or 1
    if isinstance(item, Node):
        return item.line, item.column
    return 1, 1


def _unquote(token: str) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _finite(tok: Token, value: float) -> float:
    """``value`` if it is a finite number. A literal beyond the largest double (about 1.8e308)
    reads as infinity, which neither compiler can spell the same way: refused where it is written."""
    if not math.isfinite(value):
        raise _Positioned(
            tok,
            f"{str(tok)!r} is too large a number (the largest is about 1.8e308)",
            "write a smaller number; to test that a value is present at all, write `... is not missing`",
        )
    return value


@v_args(inline=True)
class _Build(Transformer):
    def number(self, tok: Token) -> Literal:
        return Literal(*_pos(tok), _finite(tok, float(tok)), "number")

    def percent(self, tok: Token) -> Literal:
        return Literal(*_pos(tok), _finite(tok, float(tok[:-1]) / 100.0), "number")

    def neg_number(self, tok: Token) -> Literal:
        return Literal(*_pos(tok), -_finite(tok, float(tok)), "number")

    def neg_percent(self, tok: Token) -> Literal:
        return Literal(*_pos(tok), -_finite(tok, float(tok[:-1]) / 100.0), "number")

    def string(self, tok: Token) -> Literal:
        return Literal(*_pos(tok), _unquote(tok), "text")

    def true(self, tok: Token | None = None) -> Literal:
        return Literal(*_pos(tok), True, "bool")

    def false(self, tok: Token | None = None) -> Literal:
        return Literal(*_pos(tok), False, "bool")

    def date(self, tok: Token) -> Literal:
        text = _unquote(tok)
        try:
            value = date.fromisoformat(text)
        except ValueError:
            raise _Positioned(
                tok, f"{text!r} is not a date", "write dates as date '2026-01-31' (year-month-day)"
            ) from None
        return Literal(*_pos(tok), value, "date")

    def name(self, tok: Token) -> Name:
        return Name(*_pos(tok), str(tok))

    def neg(self, operand: Node) -> Node:
        if isinstance(operand, Literal) and operand.type == "number":
            return Literal(operand.line, operand.column, -operand.value, "number")
        return Neg(*_pos(operand), operand)

    def sum(self, *parts: Any) -> Node:
        return self._chain(parts)

    def product(self, *parts: Any) -> Node:
        return self._chain(parts)

    @staticmethod
    def _chain(parts: tuple[Any, ...]) -> Node:
        node = parts[0]
        for op, right in zip(parts[1::2], parts[2::2], strict=True):
            node = Arith(*_pos(node), str(op), node, right)
        return node

    def compare(self, left: Node, op: Token, right: Node) -> Compare:
        norm = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return Compare(*_pos(left), norm, left, right)

    def in_list(self, operand: Node, *values: Literal) -> InList:
        return InList(*_pos(operand), operand, tuple(values), False)

    def not_in_list(self, operand: Node, *values: Literal) -> InList:
        return InList(*_pos(operand), operand, tuple(values), True)

    def between(self, operand: Node, low: Node, high: Node) -> Between:
        return Between(*_pos(operand), operand, low, high)

    def is_missing(self, operand: Node) -> IsMissing:
        return IsMissing(*_pos(operand), operand, False)

    def is_not_missing(self, operand: Node) -> IsMissing:
        return IsMissing(*_pos(operand), operand, True)

    def starts_with(self, operand: Node, tok: Token) -> TextTest:
        return TextTest(*_pos(operand), "starts_with", operand, _unquote(tok))

    def contains(self, operand: Node, tok: Token) -> TextTest:
        return TextTest(*_pos(operand), "contains", operand, _unquote(tok))

    def and_expr(self, *items: Node) -> BoolOp:
        return BoolOp(*_pos(items[0]), "and", tuple(items))

    def or_expr(self, *items: Node) -> BoolOp:
        return BoolOp(*_pos(items[0]), "or", tuple(items))

    def not_(self, operand: Node) -> Not:
        return Not(*_pos(operand), operand)


class _Positioned(Exception):
    def __init__(self, where: Any, message: str, remedy: str):
        super().__init__(message)
        self.line, self.column = _pos(where)
        self.message = message
        self.remedy = remedy


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=False, maybe_placeholders=False)


def syntax_error(
    message: str, remedy: str, *, line: int, column: int, field: str = "when"
) -> RuleSyntaxError:
    return RuleSyntaxError(
        f"{field}, line {line} column {column}: {message}",
        remedy=remedy,
        details={"field": field, "line": line, "column": column},
    )


def parse_condition(text: str) -> Node:
    """The syntax tree of a condition; RuleSyntaxError with line, column and what was expected."""
    if not text or not text.strip():
        raise syntax_error(
            "the condition is empty", "write a condition, e.g. unit_value_ratio < 30%", line=1, column=1
        )
    try:
        tree = _parser().parse(text)
        return _Build().transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, _Positioned):
            raise syntax_error(inner.message, inner.remedy, line=inner.line, column=inner.column) from None
        raise
    except UnexpectedInput as exc:
        raise _explain_unexpected(text, exc) from None


def _explain_unexpected(text: str, exc: UnexpectedInput) -> RuleSyntaxError:
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    expected: set[str] = set()
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        expected = set(exc.expected)
    elif isinstance(exc, UnexpectedCharacters):
        expected = set(exc.allowed or ())
    words = sorted({_FRIENDLY.get(e, e.lower().strip("_")) for e in expected if not e.startswith("__")})
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        found = "the condition ends too early"
    elif isinstance(exc, UnexpectedToken):
        found = f"unexpected {str(exc.token)!r}"
    else:
        found = (
            f"unexpected character {text[exc.pos_in_stream]!r}"
            if exc.pos_in_stream is not None
            else "bad text"
        )
    remedy = f"expected {', '.join(words)}" if words else "see docs/risk-rules.md for the syntax"
    return syntax_error(found, remedy, line=line, column=column)


# --- names and types ------------------------------------------------------------------------


def names_in(node: Node) -> set[str]:
    """Every field or feature name the condition reads."""
    if isinstance(node, Name):
        return {node.name}
    found: set[str] = set()
    for value in vars(node).values():
        if isinstance(value, Node):
            found |= names_in(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    found |= names_in(item)
    return found


def check_types(node: Node, columns: dict[str, str]) -> None:
    """Raise RuleSyntaxError (with position) unless ``node`` is a well-typed condition over ``columns``."""
    kind = _type_of(node, columns)
    if kind != "bool":
        raise syntax_error(
            f"the condition is a {kind}, not a yes/no test",
            "compare it with something, e.g. unit_value_ratio < 0.3",
            line=node.line,
            column=node.column,
        )


def _expect(node: Node, columns: dict[str, str], want: tuple[str, ...], what: str) -> str:
    got = _type_of(node, columns)
    if got not in want:
        raise syntax_error(
            f"{what} needs {' or '.join(want)}, but {_describe(node)} is {got}",
            "compare values of the same type (numbers with numbers, text with quoted text, "
            "dates with date '2026-01-31')",
            line=node.line,
            column=node.column,
        )
    return got


def _describe(node: Node) -> str:
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Literal):
        if node.type == "number":
            return f"{node.value:g}"
        return repr(node.value) if node.type != "date" else f"date '{node.value}'"
    return "the expression"


def _type_of(node: Node, columns: dict[str, str]) -> str:
    if isinstance(node, Literal):
        return node.type
    if isinstance(node, Name):
        if node.name not in columns:
            close = difflib.get_close_matches(node.name, list(columns), n=3, cutoff=0.6)
            remedy = (
                f"did you mean {' or '.join(close)}?"
                if close
                else "use a field or feature of this record kind (GET /api/v1/rules/columns/{kind})"
            )
            raise syntax_error(f"unknown name {node.name!r}", remedy, line=node.line, column=node.column)
        return columns[node.name]
    if isinstance(node, Neg):
        return _expect(node.operand, columns, ("number",), "'-'")
    if isinstance(node, Arith):
        _expect(node.left, columns, ("number",), f"'{node.op}'")
        _expect(node.right, columns, ("number",), f"'{node.op}'")
        return "number"
    if isinstance(node, Compare):
        left = _type_of(node.left, columns)
        ordered = ("number", "text", "date") if node.op not in ("=", "!=") else TYPES
        _expect(node.left, columns, ordered, f"'{node.op}'")
        _expect(node.right, columns, (left,), f"'{node.op}' with {_describe(node.left)} ({left})")
        return "bool"
    if isinstance(node, InList):
        left = _expect(node.operand, columns, ("number", "text", "date"), "'in'")
        for value in node.values:
            _expect(value, columns, (left,), f"'in' with {_describe(node.operand)} ({left})")
        return "bool"
    if isinstance(node, Between):
        left = _expect(node.operand, columns, ("number", "date"), "'between'")
        _expect(node.low, columns, (left,), "'between'")
        _expect(node.high, columns, (left,), "'between'")
        _check_bounds(node)
        return "bool"
    if isinstance(node, IsMissing):
        _type_of(node.operand, columns)
        return "bool"
    if isinstance(node, TextTest):
        _expect(node.operand, columns, ("text",), f"'{node.op.replace('_', ' ')}'")
        return "bool"
    if isinstance(node, BoolOp):
        for item in node.items:
            _expect(item, columns, ("bool",), f"'{node.op}'")
        return "bool"
    if isinstance(node, Not):
        _expect(node.operand, columns, ("bool",), "'not'")
        return "bool"
    raise TypeError(f"unknown node {node!r}")


def _literal_value(node: Node) -> Any:
    """The value of a literal bound (a negated number too); None for anything computed."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Neg) and isinstance(node.operand, Literal) and node.operand.type == "number":
        return -node.operand.value
    return None


def _check_bounds(node: Between) -> None:
    """Refuse literal bounds in the wrong order: ``x between 10 and 1`` is never true (as in SQL,
    the low bound comes first), so the rule would silently never hit."""
    low, high = _literal_value(node.low), _literal_value(node.high)
    if low is None or high is None or type(low) is not type(high) or not low > high:
        return
    raise syntax_error(
        f"'between {_shown(low)} and {_shown(high)}': the low bound is above the high bound, so the "
        "condition can never be true",
        f"write the low bound first: between {_shown(high)} and {_shown(low)}",
        line=node.low.line,
        column=node.low.column,
    )


def _shown(value: Any) -> str:
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def referenced_types(node: Node, columns: dict[str, str]) -> dict[str, str]:
    """name -> type of every name the condition reads (the compilers normalise values by type)."""
    return {name: columns[name] for name in names_in(node) if name in columns}


__all__ = [
    "TYPES",
    "Arith",
    "Between",
    "BoolOp",
    "Compare",
    "InList",
    "IsMissing",
    "Literal",
    "Name",
    "Neg",
    "Node",
    "Not",
    "TextTest",
    "check_types",
    "names_in",
    "parse_condition",
    "referenced_types",
    "syntax_error",
]
