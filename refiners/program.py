"""Parse a ProX program (model output) into whitelisted calls, without evaluating anything.

Each non-empty line must be exactly one call of a whitelisted function with literal arguments,
given by keyword or by position:

    drop_doc()  keep_doc()                         doc stage
    remove_lines(line_start=I, line_end=J)         chunk stage (0-based, inclusive, global numbers)
    normalize(source_str="..", target_str="..")    chunk stage (target_str defaults to "")
    keep_chunk()  skip_chunk()  untouch_doc()      no-ops, either stage

A line is parsed with `ast.parse` and only these nodes are accepted: Module > Expr > Call whose
`func` is a Name in the whitelist, and arguments that are `ast.Constant` str / int (or `-int`).
Anything else (other names, attributes, subscripts, nested calls, lambdas, comprehensions,
f-strings, bytes, floats, starred or `**` arguments, several statements) rejects that line
with a reason. Nothing is ever passed to eval/exec/literal_eval: values are read from the
Constant nodes. Sizes are bounded before parsing (program chars, line chars, calls) and after
(string literal chars, integer magnitude), so a hostile output costs bounded time and memory.

Canonical lines (`remove_lines(line_start=3, line_end=7)`, `keep_chunk()`) take a regex fast
path that yields exactly what the `ast` path would; everything else goes through `ast`.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MAX_PROGRAM_CHARS = 65_536
MAX_LINE_CHARS = 8_192
MAX_CALLS = 256
MAX_STR_CHARS = 4_096
MAX_INT = 10**9

NOOPS = ("keep_chunk", "skip_chunk", "untouch_doc")
# name -> (parameter names in positional order, number of required parameters, parameter type)
SIGNATURES: dict[str, tuple[tuple[str, ...], int, type]] = {
    "drop_doc": ((), 0, int),
    "keep_doc": ((), 0, int),
    "remove_lines": (("line_start", "line_end"), 2, int),
    "normalize": (("source_str", "target_str"), 1, str),
    **{n: ((), 0, int) for n in NOOPS},
}
DOC_CALLS = frozenset({"drop_doc", "keep_doc", *NOOPS})
CHUNK_CALLS = frozenset({"remove_lines", "normalize", *NOOPS})

_FAST_REMOVE = re.compile(r"remove_lines\(line_start=(0|[1-9][0-9]{0,8}), ?line_end=(0|[1-9][0-9]{0,8})\)")
# double-quoted strings with no backslash, quote or newline read the same as their ast.Constant value
_FAST_NORMALIZE = re.compile(r'normalize\(source_str="([^"\\\n\r\x00\ud800-\udfff]*)", ?target_str="([^"\\\n\r\x00\ud800-\udfff]*)"\)')
_FAST_NOARG = re.compile(r"(drop_doc|keep_doc|keep_chunk|skip_chunk|untouch_doc)\(\)")


@dataclass(frozen=True)
class Call:
    """One accepted call. `args` holds every parameter (defaults filled in)."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, key: str) -> Any:
        return dict(self.args)[key]

    @property
    def text(self) -> str:
        """Canonical source text: keyword arguments, JSON-quoted strings (also valid Python)."""
        inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v}" for k, v in self.args)
        return f"{self.name}({inner})"


@dataclass
class Program:
    calls: list[Call] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: bool = False  # the whole program was refused (too long): it must be ignored


class Rejected(Exception):
    pass


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        v = node.value
        if type(v) is str:
            if len(v) > MAX_STR_CHARS:
                raise Rejected(f"string literal longer than {MAX_STR_CHARS} chars")
            return v
        if type(v) is int:
            if abs(v) > MAX_INT:
                raise Rejected(f"integer literal beyond ±{MAX_INT}")
            return v
        raise Rejected(f"literal of type {type(v).__name__} not allowed")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        v = -node.operand.value
        if abs(v) > MAX_INT:
            raise Rejected(f"integer literal beyond ±{MAX_INT}")
        return v
    if isinstance(node, ast.JoinedStr):
        raise Rejected("f-string not allowed")
    raise Rejected(f"argument must be a literal, got {type(node).__name__}")


def _call_from_ast(line: str) -> Call:
    try:
        with warnings.catch_warnings():
            # invalid escapes in model output ("\_") warn at parse time; they are not our problem
            warnings.simplefilter("ignore")
            tree = ast.parse(line, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as e:
        msg = e.msg if isinstance(e, SyntaxError) else type(e).__name__
        raise Rejected(f"not valid syntax ({msg})") from None
    if len(tree.body) != 1:
        raise Rejected("expected exactly one call per line" if tree.body else "no call")
    stmt = tree.body[0]
    if not isinstance(stmt, ast.Expr):
        raise Rejected(f"statement {type(stmt).__name__} not allowed")
    node = stmt.value
    if not isinstance(node, ast.Call):
        raise Rejected(f"expected a call, got {type(node).__name__}")
    if not isinstance(node.func, ast.Name):
        raise Rejected(f"callee must be a plain name, got {type(node.func).__name__}")
    name = node.func.id
    if name not in SIGNATURES:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise Rejected(f"unknown function {shown!r}")
    params, required, typ = SIGNATURES[name]
    if len(node.args) > len(params):
        raise Rejected(f"{name}() takes {len(params)} arguments, got {len(node.args)} positional")
    values: dict[str, Any] = {}
    for p, a in zip(params, node.args):
        if isinstance(a, ast.Starred):
            raise Rejected("starred argument not allowed")
        values[p] = _literal(a)
    for kw in node.keywords:
        if kw.arg is None:
            raise Rejected("** argument not allowed")
        if kw.arg not in params:
            shown = kw.arg if len(kw.arg) <= 40 else kw.arg[:40] + "..."
            raise Rejected(f"{name}() has no parameter {shown!r}")
        if kw.arg in values:
            raise Rejected(f"{name}() got {kw.arg!r} twice")
        values[kw.arg] = _literal(kw.value)
    missing = [p for p in params[:required] if p not in values]
    if missing:
        raise Rejected(f"{name}() missing {', '.join(missing)}")
    for p, v in values.items():
        if type(v) is not typ:
            raise Rejected(f"{name}({p}=...) must be {typ.__name__}, got {type(v).__name__}")
    if name == "normalize":
        values.setdefault("target_str", "")
    return Call(name, tuple((p, values[p]) for p in params if p in values))


_CACHEABLE = 256  # short lines repeat a lot across documents ("keep_chunk()"): parse each once


@lru_cache(maxsize=1 << 16)
def _parse_cached(line: str) -> Call | str:
    try:
        return _parse_uncached(line)
    except Rejected as e:
        return str(e)


def parse_line(line: str) -> Call:
    """One program line -> Call, or raise Rejected(reason)."""
    if len(line) <= _CACHEABLE:
        r = _parse_cached(line)
        if isinstance(r, str):
            raise Rejected(r)
        return r
    return _parse_uncached(line)


def _parse_uncached(line: str) -> Call:
    if len(line) > MAX_LINE_CHARS:
        raise Rejected(f"line longer than {MAX_LINE_CHARS} chars")
    m = _FAST_REMOVE.fullmatch(line)
    if m:
        return Call("remove_lines", (("line_start", int(m.group(1))), ("line_end", int(m.group(2)))))
    m = _FAST_NOARG.fullmatch(line)
    if m:
        return Call(m.group(1))
    m = _FAST_NORMALIZE.fullmatch(line)
    if m and len(m.group(1)) <= MAX_STR_CHARS and len(m.group(2)) <= MAX_STR_CHARS:
        return Call("normalize", (("source_str", m.group(1)), ("target_str", m.group(2))))
    return _call_from_ast(line)


def _short(line: str, n: int = 60) -> str:
    return repr(line if len(line) <= n else line[:n] + "...")


def parse_program(text: str | None, allowed: frozenset[str] = CHUNK_CALLS, where: str = "") -> Program:
    """Parse model output. Every rejected line becomes one error reason; accepted calls keep order."""
    prog = Program()
    if text is None:
        return prog
    if not isinstance(text, str):
        prog.errors.append(f"{where}program is not text")
        prog.fatal = True
        return prog
    if len(text) > MAX_PROGRAM_CHARS:
        prog.errors.append(f"{where}program longer than {MAX_PROGRAM_CHARS} chars")
        prog.fatal = True
        return prog
    n_calls = 0
    for i, raw in enumerate(text.split("\n")):
        line = raw.strip()
        if not line:
            continue
        n_calls += 1
        if n_calls > MAX_CALLS:
            prog.errors.append(f"{where}more than {MAX_CALLS} calls")
            prog.fatal = True
            break
        try:
            call = parse_line(line)
        except Rejected as e:
            prog.errors.append(f"{where}line {i}: {e} in {_short(line)}")
            continue
        if call.name not in allowed:
            prog.errors.append(f"{where}line {i}: {call.name}() not allowed at this stage")
            continue
        prog.calls.append(call)
    return prog
