"""One registry shape (core/registry.py) for stages, input formats, refiner backends and executor kinds:
a name is registered once, a lookup of an unknown name names the known ones and the closest."""

from __future__ import annotations

import pytest

from curate.core import stage_api
from curate.core.errors import ConfigError
from curate.core.registry import Registry, UnknownName
from curate.core.stage_api import StrictModel, get_stage, register_stage


class _One:
    pass


class _Other:
    pass


def test_a_name_is_registered_once() -> None:
    r: Registry[type] = Registry("widget")
    r.add("a", _One)
    r.add("a", _One)  # the same definition again (a module imported twice): no conflict
    with pytest.raises(ValueError, match=r"widget 'a' registered twice \(.*_One and .*_Other\)"):
        r.add("a", _Other)
    assert r.get("a") is _One and r.names() == ["a"]


def test_an_unknown_name_says_the_known_ones_and_the_closest() -> None:
    r: Registry[int] = Registry("widget")
    r.add("minhash", 1)
    r.add("exact", 2)
    with pytest.raises(UnknownName) as e:
        r.get("minhsh")
    assert str(e.value.problems[0]) == "unknown widget 'minhsh' (did you mean 'minhash'?); known: minhash, exact"
    assert isinstance(e.value, ConfigError) and isinstance(e.value, KeyError)
    assert "\n  - unknown widget" in str(e.value)  # a ConfigError's message, not KeyError's quoted repr


def test_a_stage_name_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    stage_api.load_builtin_stages()
    monkeypatch.setattr(stage_api, "_REGISTRY", stage_api._REGISTRY.copy())

    class Opts(StrictModel):
        pass

    @register_stage("length_filter_twin", Opts, "a test stage")
    def build(options: Opts, ctx: object) -> None:
        pass

    def other(options: Opts, ctx: object) -> None:
        pass

    with pytest.raises(ValueError, match="stage 'length_filter_twin' registered twice"):
        register_stage("length_filter_twin", Opts, "another")(other)
    with pytest.raises(ValueError, match="stage 'length_filter' registered twice"):
        register_stage("length_filter", Opts, "a second length_filter")(other)
    assert get_stage("length_filter_twin").build is build


def test_an_unknown_stage_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"unknown stage 'lenght_filter' \(did you mean 'length_filter'\?\)"):
        get_stage("lenght_filter")


def test_a_stage_has_one_prepare_check(monkeypatch: pytest.MonkeyPatch) -> None:
    stage_api.load_builtin_stages()
    monkeypatch.setattr(stage_api, "_PREPARE", stage_api._PREPARE.copy())

    def check(options: object, pf: object) -> None:
        pass

    with pytest.raises(ValueError, match="prepare check of stage 'quality_rule' registered twice"):
        stage_api.register_prepare("quality_rule")(check)
    assert stage_api.get_prepare("length_filter") is None  # a stage without one
