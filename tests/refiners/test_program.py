"""The ProX program parser: whitelisted calls only, literal arguments only, nothing evaluated."""

from __future__ import annotations

import pytest

from curate.refiners.program import (
    CHUNK_CALLS,
    DOC_CALLS,
    MAX_CALLS,
    MAX_PROGRAM_CHARS,
    Call,
    Rejected,
    parse_line,
    parse_program,
)


@pytest.mark.parametrize(
    "line, name, args",
    [
        ("remove_lines(line_start=3, line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("remove_lines(3, 7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("remove_lines(3, line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("remove_lines(line_end=7, line_start=3)", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("remove_lines(line_start=3,line_end=7)", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("remove_lines(line_start=-1, line_end=2)", "remove_lines", (("line_start", -1), ("line_end", 2))),
        (
            'normalize(source_str="a, b) = c", target_str="")',
            "normalize",
            (("source_str", "a, b) = c"), ("target_str", "")),
        ),
        (
            "normalize(source_str='single', target_str='quoted')",
            "normalize",
            (("source_str", "single"), ("target_str", "quoted")),
        ),
        ('normalize("x")', "normalize", (("source_str", "x"), ("target_str", ""))),
        (
            'normalize("x\\ny", "z")',
            "normalize",
            (("source_str", "x\\ny"), ("target_str", "z")),
        ),  # raw: no escape decoded
        (
            "remove_lines(line_start=007, line_end=012)",
            "remove_lines",
            (("line_start", 7), ("line_end", 12)),
        ),  # as int()
        ("remove_lines( line_start = 3 , line_end = 7 )", "remove_lines", (("line_start", 3), ("line_end", 7))),
        ("normalize (source_str = 'a' , target_str = 'b')", "normalize", (("source_str", "a"), ("target_str", "b"))),
        ('normalize(target_str="b", source_str="a")', "normalize", (("source_str", "a"), ("target_str", "b"))),
        ('normalize("a", target_str="b")', "normalize", (("source_str", "a"), ("target_str", "b"))),
        ("drop_doc()", "drop_doc", ()),
        ("keep_chunk()", "keep_chunk", ()),
        ("untouch_doc()", "untouch_doc", ()),
    ],
)
def test_accepts(line: str, name: str, args: tuple) -> None:
    assert parse_line(line) == Call(name, args)


def test_fast_path_equals_ast_path() -> None:
    from curate.refiners.program import _call_from_ast

    for line in [
        "remove_lines(line_start=0, line_end=0)",
        "remove_lines(line_start=12, line_end=999999999)",
        "remove_lines(line_start=1,line_end=2)",
        "keep_chunk()",
        "drop_doc()",
    ]:
        assert parse_line(line) == _call_from_ast(line)


@pytest.mark.parametrize(
    "line, reason",
    [
        ("__import__('os').system('echo hi')", "callee must be a plain name"),
        ("__import__('os')", "unknown function"),
        ("os.system('x')", "callee must be a plain name"),
        ("remove_lines(line_start=x, line_end=2)", "must be a literal"),
        ("remove_lines(line_start=a.b, line_end=2)", "must be a literal"),
        ("remove_lines(line_start=l[0], line_end=2)", "must be a literal"),
        ("remove_lines(line_start=int('3'), line_end=2)", "must be a literal"),
        ("normalize(source_str=(lambda: 1)(), target_str='')", "must be quoted strings"),
        ("normalize(source_str=[c for c in 'ab'], target_str='')", "must be quoted strings"),
        ("normalize(source_str=f'{x}', target_str='')", "must be quoted strings"),
        ("normalize(source_str=b'x', target_str='')", "must be quoted strings"),
        ("normalize(source_str=x, target_str='')", "must be quoted strings"),
        ("normalize()", "must be quoted strings"),
        ('normalize(")', "must end with a quote"),
        ('normalize(source_str="a", target_str=b)', "must end with a quote"),
        ('normalize(source_str="a", target_str="b", target_str="c")', "2 argument separators, ambiguous"),
        ('normalize(source_str="a", source_str="b")', "'source_str' twice"),
        ('normalize(target_str="x")', "missing source_str"),
        ('normalize(source_str="abc", target_str="ab', "does not end with ')'"),  # cut at max_tokens
        ('normalize(source_str="a") and more', "does not end with ')'"),
        ('(normalize)("x")', "normalize must be written normalize(...)"),
        ('normalize(source_str="\ud800", target_str="")', "lone surrogate"),  # a real U+D800 in the output
        ("keep_chunk()\udfff", "lone surrogate"),
        ("remove_lines(line_start=1, 2)", "positional argument after a keyword"),
        ("remove_lines(line_start=٣, line_end=٤)", "not valid syntax"),
        ("remove_lines(line_start=1.5, line_end=2)", "type float"),
        ("remove_lines(line_start=True, line_end=2)", "type bool"),
        ("remove_lines(*a)", "starred"),
        ("remove_lines(**a)", "** argument"),
        ("import os", "statement Import"),
        ("x = drop_doc()", "statement Assign"),
        ("drop_doc(); keep_doc()", "exactly one call"),
        ("drop_doc", "expected a call"),
        ("remove_lines(line_start=1)", "missing line_end"),
        ("remove_lines(1, 2, 3)", "takes 2 arguments"),
        ("remove_lines(1, line_start=2)", "twice"),
        ("remove_lines(line_start=1, line_end=2, all=True)", "no parameter 'all'"),
        ("normalize(source_str=1, target_str='')", "must be quoted strings"),
        ("remove_lines(line_start='1', line_end='2')", "must be int"),
        ("remove_lines(line_start='1', line_end=2)", "must be int"),
        ("remove_lines(line_start=10**100, line_end=2)", "must be a literal"),
        ("remove_lines(line_start=99999999999, line_end=2)", "beyond"),
        ("normalize(source_str=\"unbalanced, target_str='')", "opened with one quote and closed with the other"),
        ("remove_lines(" * 300, "not valid syntax"),
        ("__class__()", "unknown function"),
        ("drop_doc(\x00)", "not valid syntax"),
    ],
)
def test_rejects_with_reason(line: str, reason: str) -> None:
    with pytest.raises(Rejected, match=None) as e:
        parse_line(line)
    assert reason in str(e.value), str(e.value)


def test_program_keeps_order_and_counts_each_bad_line() -> None:
    p = parse_program(
        'remove_lines(line_start=0, line_end=1)\n\n  junk here\nnormalize("a", "b")\nos.x()\n', CHUNK_CALLS
    )
    assert [c.name for c in p.calls] == ["remove_lines", "normalize"]
    assert len(p.errors) == 2 and "line 2" in p.errors[0] and "line 4" in p.errors[1]


def test_stage_whitelists() -> None:
    p = parse_program("drop_doc()\nremove_lines(line_start=0, line_end=1)", DOC_CALLS)
    assert [c.name for c in p.calls] == ["drop_doc"] and "not allowed at this stage" in p.errors[0]
    p = parse_program("drop_doc()", CHUNK_CALLS)
    assert p.calls == [] and len(p.errors) == 1


def test_bounds() -> None:
    assert parse_program("x" * (MAX_PROGRAM_CHARS + 1)).fatal
    p = parse_program("keep_chunk()\n" * (MAX_CALLS + 5))
    assert p.fatal and len(p.calls) == MAX_CALLS
    p = parse_program('normalize(source_str="' + "a" * 5000 + '", target_str="")')
    assert p.calls == [] and "longer than" in p.errors[0]


def test_canonical_text_round_trips() -> None:
    for line in [
        'normalize(source_str="quote \\" and \\\\ and \\n", target_str="é")',
        "remove_lines(2, 3)",
        "keep_doc()",
    ]:
        c = parse_line(line)
        assert parse_line(c.text) == c


# -- strings read raw, as ProX's executor reads them (issue 11 point 8) ------------------------------------


@pytest.mark.parametrize(
    "line, source, target",
    [
        # ProX slices the line: the characters between the quotes, no escape decoded
        (r'normalize(source_str="$\begingroup$", target_str="")', r"$\begingroup$", ""),
        (r'normalize(source_str="a\tb\\c", target_str="\n")', r"a\tb\\c", r"\n"),
        (r'normalize(source_str="\ud800", target_str="")', r"\ud800", ""),  # 6 ASCII characters, not a surrogate
        # an unescaped quote copied from the document: the source ends at the one `", target_str="`
        ('normalize(source_str="He said "hi" to me", target_str="")', 'He said "hi" to me', ""),
        ('normalize(source_str=""quoted"", target_str="«quoted»")', '"quoted"', "«quoted»"),
        ('normalize(source_str="&quot;", target_str=""")', "&quot;", '"'),  # the boilerplate backend writes this
        ('normalize(source_str="say \\"hi\\"", target_str="")', 'say \\"hi\\"', ""),
        # commas, `=` and `)` are text (ProX breaks on each of them)
        ('normalize(source_str="a, b) = c", target_str="x=y, z)")', "a, b) = c", "x=y, z)"),
        ('normalize(source_str="class="foo", id="bar"", target_str="")', 'class="foo", id="bar"', ""),
        # one argument: everything up to the quote before the final `)`
        ('normalize(source_str="a", "b")', 'a", "b', ""),
        ('normalize(source_str="x)")', "x)", ""),
        ("normalize('it's')", "it's", ""),
        ('normalize(source_str="a", target_str="b", )', "a", "b"),  # trailing comma
    ],
)
def test_strings_are_raw(line: str, source: str, target: str) -> None:
    c = parse_line(line)
    assert (c.arg("source_str"), c.arg("target_str")) == (source, target)
    assert parse_line(c.text) == c  # canonical text reads back the same


def test_fast_normalize_equals_full_reader() -> None:
    from curate.refiners.program import _FAST_NORMALIZE, _NORMALIZE_HEAD, _normalize

    rng = __import__("random").Random(7)
    alphabet = ["a", " ", ",", "=", ")", "(", "\\", "'", "é", "$", "\\b", "\t", "target_str"]
    n_fast = 0
    for _ in range(3000):
        s, t = ("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(2))
        line = f'normalize(source_str="{s}",{rng.choice(["", " "])}target_str="{t}")'
        n_fast += bool(_FAST_NORMALIZE.fullmatch(line))
        assert parse_line(line) == _normalize(line, _NORMALIZE_HEAD.match(line).end()), line
        assert (parse_line(line).arg("source_str"), parse_line(line).arg("target_str")) == (s, t)
    assert n_fast > 1000


def test_surrogates_never_in_calls_and_storable() -> None:
    from curate.refiners.program import storable

    p = parse_program('normalize(source_str="a\ud800", target_str="")\nremove_lines(line_start=0, line_end=1)\ud800')
    assert p.calls == [] and len(p.errors) == 2
    for e in p.errors:
        e.encode("utf-8")  # the reason quotes the line with repr(): escaped, encodable
    assert storable("ok \ud800 x\udfff") == "ok \ufffd x\ufffd" and storable("é") == "é" and storable(None) is None
