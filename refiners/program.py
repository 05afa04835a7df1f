"""Parse a ProX program (model output) into whitelisted calls, without evaluating anything.

Each non-empty line must be exactly one call of a whitelisted function with literal arguments,
given by keyword or by position:

    drop_doc()  keep_doc()                         doc stage
    remove_lines(line_start=I, line_end=J)         chunk stage (0-based, inclusive, global numbers)
    normalize(source_str="..", target_str="..")    chunk stage (target_str defaults to "")
    keep_chunk()  skip_chunk()  untouch_doc()      no-ops, either stage

`normalize` strings are read as ProX's executor reads them (GAIR-NLP/ProX `utils/chunk_utils.py`
slices the line): the raw characters between the quotes, no escape decoded (`"$\\begingroup$"`
is the 13 characters `$\begingroup$`, `"\\n"` a backslash and an `n`). A quote inside a string
needs no escape, so a line copied verbatim still reads: the arguments are split at the one
separator `Q, target_str=Q` (after a keyword first argument) or `Q, Q` / `Q, target_str=Q` (after
a positional one), where Q is the closing quote of the first argument and the opening quote of
the last one (`"` or `'`); the last argument ends at the quote before the closing `)` that ends
the line. No separator: a one-argument call. Two or more: ambiguous, rejected. Any other text
between the quotes is taken as it is (commas, `=`, `)`, backslashes, quotes). This parser is
hand-written (`_normalize`); nothing is ever evaluated.

Every other line is parsed with `ast.parse` and only these nodes are accepted: Module > Expr >
Call whose `func` is a Name in the whitelist, and arguments that are `ast.Constant` int (or
`-int`). Anything else (other names, attributes, subscripts, nested calls, lambdas,
comprehensions, f-strings, bytes, floats, starred or `**` arguments, several statements) rejects
that line with a reason. Values are read from the Constant nodes; nothing is passed to
eval/exec/literal_eval. `remove_lines` numbers with leading zeros (`line_start=007`, copied from
the prompt's `[007]`) read as ProX's `int()` reads them. A line holding a lone surrogate
(U+D800..U+DFFF, not encodable as UTF-8) is rejected, so no call carries one to the output.
Sizes are bounded before parsing (program chars, line chars, calls) and after (string literal
chars, integer magnitude), so a hostile output costs bounded time and memory.

Canonical lines (`remove_lines(line_start=3, line_end=7)`, `keep_chunk()`, a normalize without
quotes inside its strings) take a regex fast path that yields exactly what the full path would.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
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
    **dict.fromkeys(NOOPS, ((), 0, int)),
}
DOC_CALLS = frozenset({"drop_doc", "keep_doc", *NOOPS})
CHUNK_CALLS = frozenset({"remove_lines", "normalize", *NOOPS})

_SURROGATE = re.compile("[\ud800-\udfff]")
_FAST_REMOVE = re.compile(r"remove_lines\(line_start=(0|[1-9][0-9]{0,8}), ?line_end=(0|[1-9][0-9]{0,8})\)")
# no quote inside either string: exactly one separator, so this reads what `_normalize` reads
_FAST_NORMALIZE = re.compile(
    'normalize\\(source_str="([^"\\n\ud800-\udfff]*)", ?target_str="([^"\\n\ud800-\udfff]*)"\\)'
)
_FAST_NOARG = re.compile(r"(drop_doc|keep_doc|keep_chunk|skip_chunk|untouch_doc)\(\)")
# remove_lines with ASCII integers, keyword or positional, leading zeros and a sign allowed (ProX's int())
_ARG_INT = r"(?:([A-Za-z_]\w*)\s*=\s*)?([+-]?[0-9]{1,12})"
_REMOVE = re.compile(r"remove_lines\s*\(\s*" + _ARG_INT + r"\s*,\s*" + _ARG_INT + r"\s*,?\s*\)")
_NORMALIZE_HEAD = re.compile(r"normalize\s*\(\s*")
_KEYWORD = re.compile(r"([A-Za-z_]\w*)\s*=\s*")


def _separators() -> dict[tuple[str, str, bool], re.Pattern[str]]:
    """(closing quote of arg 1, opening quote of arg 2, arg 1 by keyword?) -> separator pattern.
    After a keyword argument only `Q, name=Q` can separate (Python allows no positional argument
    after a keyword one), so `", "` inside a keyword call's string is text, not a separator."""
    out = {}
    for q1 in "\"'":
        for q2 in "\"'":
            out[(q1, q2, True)] = re.compile(q1 + r"\s*,\s*(source_str|target_str)\s*=\s*" + q2)
            out[(q1, q2, False)] = re.compile(q1 + r"\s*,\s*(?:(source_str|target_str)\s*=\s*)?" + q2)
    return out


_SEPARATORS = _separators()


@dataclass(frozen=True)
class Call:
    """One accepted call. `args` holds every parameter (defaults filled in)."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    def arg(self, key: str) -> Any:
        for k, v in self.args:
            if k == key:
                return v
        raise KeyError(key)

    @cached_property  # edits and errors quote it; parsed calls are shared through the line cache
    def text(self) -> str:
        """Canonical source text: keyword arguments, strings raw between double quotes (as they are read)."""
        inner = ", ".join(f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}" for k, v in self.args)
        return f"{self.name}({inner})"


@dataclass
class Program:
    calls: list[Call] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: bool = False  # the whole program was refused (too long, too many calls): it must be ignored


class Rejected(Exception):
    pass


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "...")


def _bind(name: str, given: list[tuple[str | None, Any]]) -> Call:
    """Positional / keyword values -> a Call with every parameter, checked against the signature."""
    params, required, typ = SIGNATURES[name]
    values: dict[str, Any] = {}
    seen_kw = False
    for pos, (kw, v) in enumerate(given):
        if kw is None:
            if seen_kw:
                raise Rejected(f"{name}(): positional argument after a keyword one")
            if pos >= len(params):
                raise Rejected(
                    f"{name}() takes {len(params)} arguments, got {sum(k is None for k, _ in given)} positional"
                )
            kw = params[pos]
        else:
            seen_kw = True
            if kw not in params:
                raise Rejected(f"{name}() has no parameter {_shown(kw)}")
        if kw in values:
            raise Rejected(f"{name}() got {kw!r} twice")
        if type(v) is not typ:
            raise Rejected(f"{name}({kw}=...) must be {typ.__name__}, got {type(v).__name__}")
        if isinstance(v, int) and abs(v) > MAX_INT:  # exactly int: type(v) is typ
            raise Rejected(f"integer literal beyond ±{MAX_INT}")
        if isinstance(v, str) and len(v) > MAX_STR_CHARS:
            raise Rejected(f"string literal longer than {MAX_STR_CHARS} chars")
        values[kw] = v
    missing = [p for p in params[:required] if p not in values]
    if missing:
        raise Rejected(f"{name}() missing {', '.join(missing)}")
    if name == "normalize":
        values.setdefault("target_str", "")
    return Call(name, tuple((p, values[p]) for p in params if p in values))


def _normalize(line: str, start: int) -> Call:
    """`normalize(...)` read as raw text (see the module docstring); `start` is just after `normalize(`."""
    if not line.endswith(")"):
        raise Rejected("normalize(...) does not end with ')' (truncated output?)")
    body = line[start:-1].rstrip()
    if body.endswith(","):  # a trailing comma, as Python allows
        body = body[:-1].rstrip()
    m = _KEYWORD.match(body)
    kw1 = m.group(1) if m else None
    i = m.end() if m else 0
    if i >= len(body) or body[i] not in "\"'":
        raise Rejected("normalize() arguments must be quoted strings")
    q1, qz = body[i], body[-1]
    if len(body) < i + 2 or qz not in "\"'":
        raise Rejected("normalize(): the last argument must end with a quote just before ')'")
    inner = body[i + 1 : -1]  # after the first opening quote, before the last closing quote
    seps = list(_SEPARATORS[(q1, qz, kw1 is not None)].finditer(inner))
    if len(seps) > 1:
        raise Rejected(f"normalize(): {len(seps)} argument separators, ambiguous")
    if not seps:
        if q1 != qz:
            raise Rejected("normalize(): a string opened with one quote and closed with the other")
        return _bind("normalize", [(kw1, inner)])
    sep = seps[0]
    return _bind("normalize", [(kw1, inner[: sep.start()]), (sep.group(1), inner[sep.end() :])])


def _remove(m: re.Match[str]) -> Call:
    return _bind("remove_lines", [(m.group(1), int(m.group(2))), (m.group(3), int(m.group(4)))])


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
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) is int
    ):
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
        raise Rejected(f"unknown function {_shown(name)}")
    if name == "normalize":
        # only reachable through odd spellings like `(normalize)("x")`: strings are read raw, never by ast
        raise Rejected("normalize must be written normalize(...) at the start of the line")
    given: list[tuple[str | None, Any]] = []
    for a in node.args:
        if isinstance(a, ast.Starred):
            raise Rejected("starred argument not allowed")
        given.append((None, _literal(a)))
    for kw in node.keywords:
        if kw.arg is None:
            raise Rejected("** argument not allowed")
        if kw.arg not in SIGNATURES[name][0]:  # the name first: `all=True` is a wrong parameter, not a wrong type
            raise Rejected(f"{name}() has no parameter {_shown(kw.arg)}")
        given.append((kw.arg, _literal(kw.value)))
    return _bind(name, given)


_CACHEABLE = 256  # short lines repeat a lot across documents ("keep_chunk()"): parse each once


@lru_cache(maxsize=1 << 16)
def _parse_cached(line: str) -> Call | str:
    try:
        return _parse_uncached(line)
    except Rejected as e:
        return str(e)


def parse_line(line: str) -> Call:
    """One program line (already stripped) -> Call, or raise Rejected(reason)."""
    if len(line) <= _CACHEABLE:
        r = _parse_cached(line)
        if type(r) is str:
            raise Rejected(r)
        return r  # type: ignore[return-value]
    return _parse_uncached(line)


def _parse_uncached(line: str) -> Call:
    if len(line) > MAX_LINE_CHARS:
        raise Rejected(f"line longer than {MAX_LINE_CHARS} chars")
    if not line.isascii() and _SURROGATE.search(line):
        # model output decoded with surrogateescape / a broken detokenizer: no such string may reach Parquet
        raise Rejected("lone surrogate character (not UTF-8 text)")
    m = _FAST_REMOVE.fullmatch(line)
    if m:
        return Call("remove_lines", (("line_start", int(m.group(1))), ("line_end", int(m.group(2)))))
    m = _FAST_NOARG.fullmatch(line)
    if m:
        return Call(m.group(1))
    m = _FAST_NORMALIZE.fullmatch(line)
    if m and len(m.group(1)) <= MAX_STR_CHARS and len(m.group(2)) <= MAX_STR_CHARS:
        return Call("normalize", (("source_str", m.group(1)), ("target_str", m.group(2))))
    m = _NORMALIZE_HEAD.match(line)
    if m:
        return _normalize(line, m.end())
    m = _REMOVE.fullmatch(line)
    if m:
        return _remove(m)
    return _call_from_ast(line)


def _short(line: str, n: int = 60) -> str:
    return repr(line if len(line) <= n else line[:n] + "...")


_CACHEABLE_PROGRAM = 1024  # whole short outputs repeat too ("keep_chunk()", the same removals)


@lru_cache(maxsize=1 << 14)
def _program_cached(text: str, allowed: frozenset[str], where: str) -> tuple[tuple[Call, ...], tuple[str, ...], bool]:
    p = _parse_program(text, allowed, where)
    return tuple(p.calls), tuple(p.errors), p.fatal


def parse_program(text: str | None, allowed: frozenset[str] = CHUNK_CALLS, where: str = "") -> Program:
    """Parse model output. Every rejected line becomes one error reason; accepted calls keep order."""
    if type(text) is str and len(text) <= _CACHEABLE_PROGRAM and type(allowed) is frozenset:
        calls, errors, fatal = _program_cached(text, allowed, where)
        return Program(list(calls), list(errors), fatal)  # fresh lists: a caller may extend them
    return _parse_program(text, allowed, where)


def _parse_program(text: str | None, allowed: frozenset[str], where: str) -> Program:
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
    calls, errors = prog.calls, prog.errors
    for i, raw in enumerate(text.split("\n")):
        line = raw.strip()
        if not line:
            continue
        n_calls += 1
        if n_calls > MAX_CALLS:
            errors.append(f"{where}more than {MAX_CALLS} calls")
            prog.fatal = True
            break
        try:
            call = parse_line(line)
        except Rejected as e:
            errors.append(f"{where}line {i}: {e} in {_short(line)}")
            continue
        if call.name not in allowed:
            errors.append(f"{where}line {i}: {call.name}() not allowed at this stage")
            continue
        calls.append(call)
    return prog


def storable(text: str | None) -> str | None:
    """`text` as a string the Parquet writer can encode: lone surrogates become U+FFFD (raw model output
    is stored as it came, so this is the one place it is changed, and only where it is not UTF-8)."""
    if text is None or text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub("\ufffd", text)
