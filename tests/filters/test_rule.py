"""The rule language: parsing, evaluation, explanations, and fuzzing with malformed expressions."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.core.errors import ConfigError
from curate.filters.gneissweb_recipe import GNEISSWEB_CLAUSES, GNEISSWEB_KEEP, GNEISSWEB_PARAMS, build_rule
from curate.filters.rule import Rule, RuleError, parse
from curate.pipeline.config import parse_config


def gneissweb() -> Rule:
    return Rule(GNEISSWEB_KEEP, GNEISSWEB_CLAUSES, GNEISSWEB_PARAMS)


def row(dclm=0.5, cosmo=0.0, cat=False, eflaw=20.0, tpc=0.25) -> dict:
    return {"ft_dclm": dclm, "ft_cosmo": cosmo, "is_category": cat, "eflaw": eflaw, "tokens_per_char": tpc}


@pytest.mark.parametrize(
    "r, keep, failed",
    [
        (row(), True, None),
        # FT: dclm > 0.002 or cosmo > 0.03
        (row(dclm=0.002, cosmo=0.03), False, "FT"),
        (row(dclm=0.0021, cosmo=0.0), True, None),
        (row(dclm=0.0, cosmo=0.031), True, None),
        # non-category: READ needs eflaw < 30, EXT needs 0.22 <= tpc <= 0.28
        (row(eflaw=30.0, tpc=0.25), True, None),  # READ fails, EXT holds
        (row(eflaw=29.9, tpc=0.30), True, None),  # READ holds, EXT fails
        (row(eflaw=30.0, tpc=0.30), False, "READ,EXT"),
        (row(eflaw=30.0, tpc=0.22), True, None),  # bounds inclusive
        (row(eflaw=30.0, tpc=0.28), True, None),
        (row(eflaw=30.0, tpc=0.2199), False, "READ,EXT"),
        # category: eflaw < 70, 0.1 <= tpc <= 0.5
        (row(cat=True, eflaw=69.0, tpc=0.9), True, None),
        (row(cat=True, eflaw=70.0, tpc=0.5), True, None),
        (row(cat=True, eflaw=70.0, tpc=0.51), False, "READ,EXT"),
        (row(cat=True, eflaw=45.0, tpc=0.05), True, None),
        # FT failing wins over the rest: the first false operand of `and` is named
        (row(dclm=0.0, eflaw=99.0, tpc=0.9), False, "FT"),
    ],
)
def test_gneissweb_rule_decisions(r: dict, keep: bool, failed: str | None) -> None:
    assert gneissweb().evaluate(r) == (keep, failed)


def test_clause_values_and_thresholds_are_config() -> None:
    r = build_rule(None, None, {"eflaw_ncat_max": 50}, "gneissweb", "")
    assert r.evaluate(row(eflaw=45.0, tpc=0.9)) == (True, None)
    assert gneissweb().evaluate(row(eflaw=45.0, tpc=0.9)) == (False, "READ,EXT")
    assert gneissweb().clause_values(row(cat=True)) == {
        "CAT": True,
        "NCAT": False,
        "FT": True,
        "READ": True,
        "EXT": True,
    }
    r = build_rule("FT", {"FT": "ft_dclm >= 0.9"}, None, "gneissweb", "")
    assert r.evaluate(row(dclm=0.5)) == (False, "FT")


def test_grammar_features() -> None:
    r = Rule("not (a == 'x' OR b != \"y\") and -1 < c <= 2.5e0 and flag == true")
    assert r.evaluate({"a": "z", "b": "y", "c": 0, "flag": True}) == (True, None)
    assert r.evaluate({"a": "x", "b": "y", "c": 0, "flag": True})[0] is False
    assert r.evaluate({"a": "z", "b": "y", "c": 3, "flag": True}) == (False, "-1 < c <= 2.5e0")
    assert r.columns == {"a", "b", "c", "flag"}
    # keywords are case-insensitive, escapes in strings work
    assert Rule("s == 'it\\'s' AND NOT False").evaluate({"s": "it's"}) == (True, None)


def test_rule_pickles() -> None:
    r = pickle.loads(pickle.dumps(gneissweb()))
    assert r.evaluate(row(dclm=0.0, cosmo=0.0)) == (False, "FT")


def test_runtime_errors_name_the_column() -> None:
    with pytest.raises(RuleError, match="column 'eflaw' is not in the document"):
        gneissweb().evaluate({"ft_dclm": 1.0, "ft_cosmo": 1.0, "is_category": False, "tokens_per_char": 0.1})
    with pytest.raises(RuleError, match="compares a str with a float"):
        Rule("x > 0.5").evaluate({"x": "high"})
    with pytest.raises(RuleError, match="used as a condition"):
        Rule("x").evaluate({"x": 0.7})


@pytest.mark.parametrize(
    "expr, pos, expected",
    [
        ("a <", 3, "expected a value"),
        ("(a < 1", 6, "expected ')' to close the '(' at position 0"),
        ("a = 1", 2, "use '==' to compare"),
        ("a && b", 2, "use 'and', 'or', 'not'"),
        ("a < 1 b", 6, "expected 'and', 'or', a comparison or the end"),
        ("3", 0, "expected a condition"),
        ("'x' ", 0, "expected a condition"),
        ("a < (b < c)", 4, "expected a value to compare, found a comparison"),
        ("", 0, "expected an expression"),
        ("a < 'unterminated", 4, "unterminated string"),
        ("x > 1 and", 9, "expected a value"),
        ("a < true", 4, "does not apply to true/false"),
        ("1 < 'a'", 4, "cannot compare a number with a string"),
        ("-x > 1", 1, "expected a number after '-'"),
        ("a ; b", 2, "unexpected character ';'"),
    ],
)
def test_malformed_expressions(expr: str, pos: int, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        Rule(expr, key="quality")
    msg = str(e.value)
    assert "quality.keep" in msg and f"position {pos}" in msg and expected in msg


def test_clause_errors_name_the_clause() -> None:
    with pytest.raises(ConfigError, match=r"clauses\.FT: position 9"):
        build_rule(None, {"FT": "ft_dclm >"}, None, "gneissweb", "")
    with pytest.raises(ConfigError, match="cycle"):
        Rule("A", {"A": "B", "B": "not A"})
    with pytest.raises(ConfigError, match="both a clause and a param"):
        Rule("A", {"A": "x > 1"}, {"A": 1})
    with pytest.raises(ConfigError, match="expected a condition, found param"):
        Rule("t", params={"t": 0.5})
    with pytest.raises(ConfigError, match="nested deeper"):
        Rule("(" * 200 + "x" + ")" * 200)


def test_config_error_names_stage_key() -> None:
    raw = {
        "input": {"format": "jsonl", "path": "-"},
        "output": {"path": "-"},
        "stages": [{"stage": "quality_rule", "keep": "ft_dclm >> 0.5"}],
    }
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    assert "stages[0]" in str(e.value) and "keep: position 9" in str(e.value)


_ATOMS = [
    "a",
    "b",
    "ft_dclm",
    "FT",
    "0.5",
    "-",
    "1e3",
    "'s'",
    '"t"',
    "true",
    "and",
    "or",
    "not",
    "(",
    ")",
    "<",
    "<=",
    "==",
    "!=",
    ">",
    ">=",
    "=",
    "&",
    "|",
    "!",
    "'",
    '"',
    ".",
    ",",
    "[",
    "]",
    "$",
    "\\",
    "é",
    "__",
]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_ATOMS), max_size=14), st.lists(st.sampled_from([" ", "", "\t"]), max_size=14))
def test_fuzz_token_soup_parses_or_raises_config_error(atoms: list[str], seps: list[str]) -> None:
    expr = "".join(a + (seps[i] if i < len(seps) else " ") for i, a in enumerate(atoms))
    try:
        r = Rule(expr, {"FT": "a > 0"})
    except ConfigError as e:
        assert "position" in str(e) or "nested" in str(e) or "cycle" in str(e)
        return
    # a rule that parsed evaluates, or fails with a RuleError (never another exception)
    try:
        r.evaluate({"a": 1.0, "b": 2.0, "ft_dclm": 0.3})
    except RuleError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_arbitrary_text_parses_or_raises_config_error(expr: str) -> None:
    try:
        parse(expr, "k")
    except ConfigError as e:
        assert str(e).startswith("invalid config") and "k" in str(e)
