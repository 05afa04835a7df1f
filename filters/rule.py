"""A small, safe expression language for keep/drop rules over annotation columns.

Nothing is ever passed to Python's `eval`: the text is split into tokens by one regular
expression, parsed by a recursive-descent parser into a tiny tree, checked, and compiled into
closures. Grammar (keywords are case-insensitive):

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := value (CMP value)*          # chained: 0.1 <= tokens_per_char <= 0.5
                | value "in" NAME             # membership in a list column: 'medical' in categories
    value      := NUMBER | STRING | "true" | "false" | NAME | "(" expr ")"
                | "quantile" "(" NUMBER ")"   # a threshold the run computes: dclm >= quantile(0.9)
    CMP        := "<" | "<=" | ">" | ">=" | "==" | "!="

A NAME is, in this order, a clause (another named expression of the same rule), a parameter
(a constant from `params`, e.g. a threshold) or a document column (`doc.metadata[name]`).
`x in COLUMN` is true when the list in COLUMN holds x; a null list (e.g. `categories` of a
document no category classifier claimed) holds nothing.

`quantile(q)` (0 <= q <= 1) stands for the q-quantile of the column it is compared with
(`dclm >= quantile(0.9)` keeps the top 10 % by dclm, as DCLM does); it must sit next to a column
in a comparison. The parser never computes it: `Rule.quantiles` lists what a rule needs
(`quantile_key(column, q)`), and a Rule built with `quantile_values` uses those numbers; one
without them refuses to evaluate the comparison.

A rule is a `keep` expression plus named clauses. When a document is dropped, `explain` names
the clause that failed: for `FT and (READ or EXT)` that is `FT` when FT is false, or `READ,EXT`
when both of those are false. Malformed rules raise `ConfigError` naming the key, the position
and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from curate.core.errors import ConfigError, CurateError

MAX_RULE_CHARS = 10_000
MAX_DEPTH = 64

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|<|>|\(|\)|-)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "true", "false", "in"}
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_ORDERING = {"<", "<=", ">", ">="}


class RuleError(CurateError):
    """A rule met a document it cannot evaluate (a missing column, a value of the wrong type)."""


@dataclass
class _Tok:
    kind: str  # num | str | name | kw | op | end
    text: str
    pos: int
    value: Any = None


@dataclass
class Node:
    kind: str  # num | str | bool | name | cmp | and | or | not | in | quantile (value: q)
    start: int
    end: int
    value: Any = None  # literal value, name, or list of comparison operators
    children: list[Node] = field(default_factory=list)


def _fail(key: str, expr: str, pos: int, msg: str) -> ConfigError:
    shown = expr if len(expr) <= 200 else expr[:200] + "..."
    caret = " " * min(pos, 200) + "^"
    return ConfigError(f"{key}: position {pos}: {msg}\n      {shown}\n      {caret}")


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of expression"
    return f"{tok.kind if tok.kind != 'kw' else 'keyword'} {tok.text!r}"


def tokenize(expr: str, key: str = "rule") -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    n = len(expr)
    while pos < n:
        m = _TOKEN.match(expr, pos)
        if m is None:
            ch = expr[pos]
            hint = ""
            if ch in "'\"":
                raise _fail(
                    key, expr, pos, f"unterminated string: expected a closing {ch} before the end of the expression"
                )
            if ch == "=":
                hint = " (use '==' to compare)"
            elif ch in "&|!":
                hint = " (use 'and', 'or', 'not')"
            raise _fail(
                key,
                expr,
                pos,
                f"unexpected character {ch!r}{hint}; expected a number, a 'string', a column "
                "name, a comparison (< <= > >= == !=), and/or/not or parentheses",
            )
        kind = m.lastgroup or ""
        text = m.group(0)
        if kind == "num":
            toks.append(_Tok("num", text, pos, float(text) if any(c in text for c in ".eE") else int(text)))
        elif kind == "str":
            body = text[1:-1]
            toks.append(_Tok("str", text, pos, re.sub(r"\\(.)", r"\1", body)))
        elif kind == "name":
            low = text.lower()
            toks.append(_Tok("kw", low, pos) if low in _KEYWORDS else _Tok("name", text, pos))
        elif kind == "op":
            toks.append(_Tok("op", text, pos))
        pos = m.end()
    toks.append(_Tok("end", "", n))
    return toks


class _Parser:
    def __init__(self, expr: str, key: str) -> None:
        if len(expr) > MAX_RULE_CHARS:
            raise ConfigError(f"{key}: the expression is {len(expr)} characters long; at most {MAX_RULE_CHARS}")
        self.expr, self.key = expr, key
        self.toks = tokenize(expr, key)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, expected: str) -> ConfigError:
        return _fail(self.key, self.expr, self.tok.pos, f"expected {expected}, found {_describe(self.tok)}")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self.error("an expression")
        node = self.or_expr()
        if self.tok.kind != "end":
            raise self.error("'and', 'or', a comparison or the end of the expression")
        return node

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(self.key, self.expr, self.tok.pos, f"expression nested deeper than {MAX_DEPTH} levels")

    def or_expr(self) -> Node:
        first = self.and_expr()
        items = [first]
        while self.tok.kind == "kw" and self.tok.text == "or":
            self.i += 1
            items.append(self.and_expr())
        return first if len(items) == 1 else Node("or", first.start, items[-1].end, children=items)

    def and_expr(self) -> Node:
        first = self.not_expr()
        items = [first]
        while self.tok.kind == "kw" and self.tok.text == "and":
            self.i += 1
            items.append(self.not_expr())
        return first if len(items) == 1 else Node("and", first.start, items[-1].end, children=items)

    def not_expr(self) -> Node:
        if self.tok.kind == "kw" and self.tok.text == "not":
            start = self.tok.pos
            self.i += 1
            self._enter()
            inner = self.not_expr()
            self.depth -= 1
            return Node("not", start, inner.end, children=[inner])
        return self.comparison()

    def comparison(self) -> Node:
        first = self.value()
        if self.tok.kind == "kw" and self.tok.text == "in":
            self.i += 1
            items = self.value()
            return Node("in", first.start, items.end, children=[first, items])
        operands, ops = [first], []
        while self.tok.kind == "op" and self.tok.text in _CMP:
            ops.append(self.tok.text)
            self.i += 1
            operands.append(self.value())
        if not ops:
            return first
        return Node("cmp", first.start, operands[-1].end, value=ops, children=operands)

    def value(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Node("num", t.pos, t.pos + len(t.text), value=t.value)
        if t.kind == "op" and t.text == "-":
            nxt = self.toks[self.i + 1]
            if nxt.kind != "num":
                self.i += 1
                raise self.error("a number after '-'")
            self.i += 2
            return Node("num", t.pos, nxt.pos + len(nxt.text), value=-nxt.value)
        if t.kind == "str":
            self.i += 1
            return Node("str", t.pos, t.pos + len(t.text), value=t.value)
        if t.kind == "kw" and t.text in ("true", "false"):
            self.i += 1
            return Node("bool", t.pos, t.pos + len(t.text), value=t.text == "true")
        if t.kind == "name" and t.text.lower() == "quantile" and self.toks[self.i + 1].text == "(":
            return self.quantile()
        if t.kind == "name":
            self.i += 1
            return Node("name", t.pos, t.pos + len(t.text), value=t.text)
        if t.kind == "op" and t.text == "(":
            self.i += 1
            self._enter()
            inner = self.or_expr()
            self.depth -= 1
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise self.error(f"')' to close the '(' at position {t.pos}")
            self.i += 1
            # keep the parentheses in the span so explanations quote them
            inner.start, inner.end = t.pos, self.toks[self.i - 1].pos + 1
            return inner
        raise self.error("a value (number, 'string', true/false, column name) or '('")

    def quantile(self) -> Node:
        """`quantile(q)`: the q-quantile of the column it is compared with (resolved by the Rule)."""
        start = self.tok.pos
        self.i += 2  # quantile (
        t = self.tok
        if t.kind != "num":
            raise self.error("a number between 0 and 1 in quantile(...)")
        if not 0 <= t.value <= 1:
            raise _fail(self.key, self.expr, t.pos, f"quantile({t.text}): q must be between 0 and 1")
        self.i += 1
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            raise self.error(f"')' to close quantile( at position {start}")
        self.i += 1
        return Node("quantile", start, self.toks[self.i - 1].pos + 1, value=float(t.value))


def quantile_key(column: str, q: float) -> str:
    """How a computed quantile is named in `quantile_values`, stats and the run's files."""
    return f"quantile({column}, {q:g})"


def parse(expr: str, key: str = "rule") -> Node:
    """Parse `expr` into a tree; raise ConfigError (key, position, what was expected) if malformed."""
    if not isinstance(expr, str):
        raise ConfigError(f"{key}: expected an expression string, got {type(expr).__name__}")
    return _Parser(expr, key).parse()


# ------------------------------------------------------------------------------- compiling


Params = Mapping[str, "float | int | str | bool"]


class Rule:
    """A compiled keep rule: `keep` expression, named `clauses`, constant `params`.

    `rule.evaluate(row)` -> (keep, failed) where failed names the clause(s) that made it false.
    Picklable (it is rebuilt from its source text), so it travels to worker processes.
    """

    def __init__(
        self,
        keep: str,
        clauses: Mapping[str, str] | None = None,
        params: Params | None = None,
        key: str = "rule",
        quantile_values: Mapping[str, float] | None = None,
    ) -> None:
        self.keep_src = keep
        self.clause_src = dict(clauses or {})
        self.params = dict(params or {})
        self.key = key
        # computed values of the rule's quantile(q) thresholds, by quantile_key(column, q)
        self.quantile_values = dict(quantile_values or {})
        self._compile()

    def _k(self, sub: str) -> str:
        return f"{self.key}.{sub}" if self.key else sub

    def __reduce__(self):
        return (Rule, (self.keep_src, self.clause_src, self.params, self.key, self.quantile_values))

    def with_quantiles(self, values: Mapping[str, float]) -> Rule:
        """This rule with its quantile(q) thresholds set to computed values (by quantile_key)."""
        return Rule(self.keep_src, self.clause_src, self.params, self.key, {**self.quantile_values, **values})

    # -- compile-time checks --------------------------------------------------------------------
    def _compile(self) -> None:
        for name, value in self.params.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)) or str(name).lower() in _KEYWORDS:
                raise ConfigError(f"{self._k('params')}: {name!r} is not a valid name (letters, digits, _)")
            if not isinstance(value, (int, float, str, bool)):
                raise ConfigError(f"{self._k('params')}.{name}: expected a number, string or boolean, got {value!r}")
        for name in self.clause_src:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)) or str(name).lower() in _KEYWORDS:
                raise ConfigError(f"{self._k('clauses')}: {name!r} is not a valid clause name (letters, digits, _)")
            if name in self.params:
                raise ConfigError(f"{self._k('clauses')}: {name!r} is both a clause and a param; rename one")
        self.trees: dict[str, Node] = {n: parse(src, f"{self._k('clauses')}.{n}") for n, src in self.clause_src.items()}
        self.keep_tree = parse(self.keep_src, self._k("keep"))
        self.columns: set[str] = set()
        # quantile_key -> (column, q) for every quantile(q) of the rule; the node -> its column
        self.quantiles: dict[str, tuple[str, float]] = {}
        self._quantile_column: dict[int, str] = {}
        # cycle check and type check: every clause must be a condition
        visiting: list[str] = []
        done: set[str] = set()

        def visit_clause(name: str) -> None:
            if name in done:
                return
            if name in visiting:
                cycle = " -> ".join(visiting[visiting.index(name) :] + [name])
                raise ConfigError(f"{self._k('clauses')}.{name}: clauses refer to each other in a cycle ({cycle})")
            visiting.append(name)
            self._check(self.trees[name], f"{self._k('clauses')}.{name}", self.clause_src[name], visit_clause, True)
            visiting.pop()
            done.add(name)

        for name in self.trees:
            visit_clause(name)
        self._check(self.keep_tree, self._k("keep"), self.keep_src, visit_clause, True)
        self._cache: dict[int, Callable[[Mapping[str, Any], dict[str, bool]], bool]] = {}
        self._fns = {n: self._cond(t) for n, t in self.trees.items()}
        self._keep_fn = self._cond(self.keep_tree)

    def _check(self, node: Node, key: str, src: str, visit_clause: Callable[[str], None], want_condition: bool) -> None:
        """Type check: conditions where conditions belong, values inside comparisons."""
        k = node.kind
        if k in ("and", "or", "not"):
            if not want_condition:
                raise _fail(key, src, node.start, "expected a value to compare, found a condition (and/or/not)")
            for c in node.children:
                self._check(c, key, src, visit_clause, True)
        elif k == "in":
            if not want_condition:
                raise _fail(key, src, node.start, "expected a value to compare, found a membership test ('in')")
            item, items = node.children
            self._check(item, key, src, visit_clause, False)
            if items.kind != "name" or items.value in self.params or items.value in self.trees:
                raise _fail(key, src, items.start, "expected a list column after 'in' (e.g. 'medical' in categories)")
            self._check(items, key, src, visit_clause, False)
        elif k == "cmp":
            if not want_condition:
                raise _fail(key, src, node.start, "expected a value to compare, found a comparison")
            for c in node.children:
                self._check(c, key, src, visit_clause, False)
            self._bind_quantiles(node, key, src)
            kinds = [self._static_type(c) for c in node.children]
            for op, a, b, at in zip(node.value, kinds, kinds[1:], node.children[1:]):
                if a and b and a != b:
                    raise _fail(key, src, at.start, f"cannot compare a {a} with a {b}")
                if op in _ORDERING and "bool" in (a, b):
                    raise _fail(key, src, at.start, f"'{op}' does not apply to true/false; use == or !=")
        elif k == "name":
            name = node.value
            if name in self.trees:
                if not want_condition:
                    raise _fail(
                        key, src, node.start, f"expected a value to compare, found clause {name!r} (a condition)"
                    )
                visit_clause(name)
            elif name in self.params:
                if want_condition and not isinstance(self.params[name], bool):
                    raise _fail(
                        key, src, node.start, f"expected a condition, found param {name!r} = {self.params[name]!r}"
                    )
            else:
                self.columns.add(name)  # a column: a boolean column can stand alone; checked per document
        elif k == "quantile":
            if want_condition:
                raise _fail(key, src, node.start, "expected a condition, found quantile(...); compare a column with it")
        elif k in ("num", "str"):
            if want_condition:
                raise _fail(
                    key,
                    src,
                    node.start,
                    f"expected a condition (a comparison, a clause, a boolean column), "
                    f"found {'number' if k == 'num' else 'string'} {src[node.start : node.end]}",
                )

    def _bind_quantiles(self, node: Node, key: str, src: str) -> None:
        """Each quantile(q) of a comparison is the quantile of the column beside it (left first)."""
        ops = node.children
        for i, c in enumerate(ops):
            if c.kind != "quantile":
                continue
            near = [ops[j] for j in (i - 1, i + 1) if 0 <= j < len(ops)]
            cols = [
                n.value for n in near if n.kind == "name" and n.value not in self.params and n.value not in self.trees
            ]
            if not cols:
                raise _fail(
                    key, src, c.start, "quantile(q) must be compared with a column (e.g. dclm >= quantile(0.9))"
                )
            self._quantile_column[id(c)] = cols[0]
            self.quantiles[quantile_key(cols[0], c.value)] = (cols[0], c.value)

    def quantile_of(self, node: Node) -> str:
        """The quantile_key of a quantile(q) node of this rule's trees."""
        return quantile_key(self._quantile_column[id(node)], node.value)

    def _static_type(self, node: Node) -> str | None:
        if node.kind in ("num", "quantile"):
            return "number"
        if node.kind == "str":
            return "string"
        if node.kind == "bool":
            return "bool"
        if node.kind == "name" and node.value in self.params:
            v = self.params[node.value]
            return "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "string"
        return None  # a column: known per document

    # -- closures ---------------------------------------------------------------------------------
    def _value(self, node: Node) -> Callable[[Mapping[str, Any]], Any]:
        if node.kind in ("num", "str", "bool"):
            v = node.value
            return lambda row: v
        if node.kind == "quantile":
            qkey = quantile_key(self._quantile_column[id(node)], node.value)
            if qkey in self.quantile_values:
                q = float(self.quantile_values[qkey])
                return lambda row: q
            where = self.key or "rule"

            def unresolved(row: Mapping[str, Any]) -> Any:
                raise RuleError(f"{where}: {qkey} has not been computed (the run computes it before this rule)")

            return unresolved
        name = node.value
        if name in self.params:
            v = self.params[name]
            return lambda row: v
        key = self.key or "rule"

        def column(row: Mapping[str, Any]) -> Any:
            try:
                return row[name]
            except KeyError:
                raise RuleError(
                    f"{key}: column {name!r} is not in the document (present: "
                    f"{', '.join(sorted(map(str, row))) or 'none'}); add the stage that writes it "
                    "before this rule"
                ) from None

        return column

    def _cond(self, node: Node) -> Callable[[Mapping[str, Any], dict[str, bool]], bool]:
        k = node.kind
        if k == "and":
            fs = [self._cond(c) for c in node.children]
            return lambda row, memo: all(f(row, memo) for f in fs)
        if k == "or":
            fs = [self._cond(c) for c in node.children]
            return lambda row, memo: any(f(row, memo) for f in fs)
        if k == "not":
            f = self._cond(node.children[0])
            return lambda row, memo: not f(row, memo)
        if k == "bool":
            v = node.value
            return lambda row, memo: v
        if k == "name" and node.value in self.trees:
            name = node.value

            def clause(row: Mapping[str, Any], memo: dict[str, bool]) -> bool:
                r = memo.get(name)
                if r is None:
                    r = memo[name] = self._fns[name](row, memo)
                return r

            return clause
        if k == "name":
            get = self._value(node)
            key, name = self.key or "rule", node.value

            def boolean(row: Mapping[str, Any], memo: dict[str, bool]) -> bool:
                v = get(row)
                if not isinstance(v, bool):
                    raise RuleError(
                        f"{key}: column {name!r} is used as a condition but holds {v!r}; compare it (e.g. {name} > 0.5)"
                    )
                return v

            return boolean
        if k == "in":
            return self._member(node)
        # comparison (possibly chained)
        getters = [self._value(c) for c in node.children]
        ops = [(_CMP[o], o) for o in node.value]
        key = self.key or "rule"
        src = self._src_of(node)

        def compare(row: Mapping[str, Any], memo: dict[str, bool]) -> bool:
            left = getters[0](row)
            for (fn, o), g in zip(ops, getters[1:]):
                right = g(row)
                _check_types(left, right, o, key, src)
                if not fn(left, right):
                    return False
                left = right
            return True

        return compare

    def _member(self, node: Node) -> Callable[[Mapping[str, Any], dict[str, bool]], bool]:
        get_item, get_items = (self._value(c) for c in node.children)
        key, name, src = self.key or "rule", node.children[1].value, self._src_of(node)

        def member(row: Mapping[str, Any], memo: dict[str, bool]) -> bool:
            items = get_items(row)
            if items is None:
                return False  # a null list holds nothing
            if not isinstance(items, (list, tuple)):
                raise RuleError(f"{key}: cannot evaluate {src!r}: column {name!r} holds {items!r}, not a list")
            item = get_item(row)
            return any(_same_kind(x, item) and x == item for x in items)

        return member

    def _src_of(self, node: Node) -> str:
        for name, tree in self.trees.items():
            if _contains(tree, node):
                return " ".join(self.clause_src[name][node.start : node.end].split())
        return " ".join(self.keep_src[node.start : node.end].split())

    # -- evaluation -------------------------------------------------------------------------------
    def evaluate(self, row: Mapping[str, Any]) -> tuple[bool, str | None]:
        """(keep, failed): failed names the clause(s) that made the rule false, None when kept."""
        memo: dict[str, bool] = {}
        if self._keep_fn(row, memo):
            return True, None
        return False, self._explain(self.keep_tree, row, memo)

    def clause_values(self, row: Mapping[str, Any]) -> dict[str, bool]:
        memo: dict[str, bool] = {}
        return {n: self._fns[n](row, memo) for n in self._fns}

    def _explain(self, node: Node, row: Mapping[str, Any], memo: dict[str, bool]) -> str:
        """Why `node` is false: the first false operand of an `and`, every operand of an `or`."""
        if node.kind == "name" and node.value in self.trees:
            return node.value
        if node.kind == "and":
            for c in node.children:
                fn = self._cache.get(id(c))
                if fn is None:
                    fn = self._cache[id(c)] = self._cond(c)
                if not fn(row, memo):
                    return self._explain(c, row, memo)
        if node.kind == "or":
            return ",".join(self._explain(c, row, memo) for c in node.children)
        return self._src_of(node)


def _contains(tree: Node, node: Node) -> bool:
    if tree is node:
        return True
    return any(_contains(c, node) for c in tree.children)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_kind(a: Any, b: Any) -> bool:
    """Comparable for membership: two numbers, or two values of one type (True is not 1 here)."""
    return (_is_number(a) and _is_number(b)) or type(a) is type(b)


def _check_types(a: Any, b: Any, op: str, key: str, src: str) -> None:
    na = isinstance(a, (int, float)) and not isinstance(a, bool)
    nb = isinstance(b, (int, float)) and not isinstance(b, bool)
    if na and nb:
        return
    if isinstance(a, str) and isinstance(b, str):
        return
    if isinstance(a, bool) and isinstance(b, bool) and op not in _ORDERING:
        return
    raise RuleError(
        f"{key}: cannot evaluate {src!r}: {a!r} {op} {b!r} compares a {type(a).__name__} with a {type(b).__name__}"
    )
