"""The GneissWeb recipe: its thresholds, clauses and keep rule, its default models and tokenizer.

GneissWeb's rule over the annotation columns:

    CAT  = is_category                     (any category classifier says its category)
    NCAT = not is_category
    FT   = ft_dclm > dclm_min or ft_cosmo > cosmo_min
    READ = (CAT and eflaw < eflaw_cat_max) or (NCAT and eflaw < eflaw_ncat_max)
    EXT  = (CAT and tpc_cat_min <= tokens_per_char <= tpc_cat_max)
           or (NCAT and tpc_ncat_min <= tokens_per_char <= tpc_ncat_max)
    KEEP = FT and (READ or EXT)

with dclm_min 0.002, cosmo_min 0.03, eflaw 70 / 30, tokens per char 0.1-0.5 / 0.22-0.28.
Every threshold is a `params` entry and every clause can be replaced in the config: `build_rule`
lays a config's clauses, params and keep expression over this preset (the `gneissweb_ensemble`
stage, and `quality_rule` with `preset: gneissweb`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curate.core.errors import ConfigError

from .rule import Rule

GNEISSWEB_PARAMS: dict[str, float] = {
    "dclm_min": 0.002,
    "cosmo_min": 0.03,
    "eflaw_cat_max": 70,
    "eflaw_ncat_max": 30,
    "tpc_cat_min": 0.1,
    "tpc_cat_max": 0.5,
    "tpc_ncat_min": 0.22,
    "tpc_ncat_max": 0.28,
}
GNEISSWEB_CLAUSES: dict[str, str] = {
    "CAT": "is_category",
    "NCAT": "not is_category",
    "FT": "ft_dclm > dclm_min or ft_cosmo > cosmo_min",
    "READ": "(CAT and eflaw < eflaw_cat_max) or (NCAT and eflaw < eflaw_ncat_max)",
    "EXT": "(CAT and tpc_cat_min <= tokens_per_char <= tpc_cat_max) or "
    "(NCAT and tpc_ncat_min <= tokens_per_char <= tpc_ncat_max)",
}
GNEISSWEB_KEEP = "FT and (READ or EXT)"

GNEISSWEB_QUALITY_MODELS: list[dict[str, Any]] = [
    {"name": "dclm", "path": "mlfoundations/fasttext-oh-eli5", "label": "__label__hq", "preprocess": "dclm"},
    {
        "name": "cosmo",
        "path": "ibm-granite/GneissWeb.Quality_annotator",
        "label": "__label__hq",
        "preprocess": "newlines",
    },
]
GNEISSWEB_CATEGORY_MODELS: list[dict[str, Any]] = [
    {"name": "medical", "path": "ibm-granite/GneissWeb.Med_classifier"},
    {"name": "education", "path": "ibm-granite/GneissWeb.Edu_classifier"},
    {"name": "technology", "path": "ibm-granite/GneissWeb.Tech_classifier"},
    {"name": "science", "path": "ibm-granite/GneissWeb.Sci_classifier"},
]
# GneissWeb tokenized with StarCoder's tokenizer (a gated repository: needs HF_TOKEN)
GNEISSWEB_TOKENIZER = "bigcode/starcoder"


def build_rule(
    keep: str | None, clauses: Mapping[str, str] | None, params: Mapping[str, Any] | None, preset: str | None, key: str
) -> Rule:
    """The preset's rule with the config's clauses, params and keep expression laid over it."""
    base_clauses: dict[str, str] = dict(GNEISSWEB_CLAUSES) if preset == "gneissweb" else {}
    base_params: dict[str, Any] = dict(GNEISSWEB_PARAMS) if preset == "gneissweb" else {}
    base_keep = GNEISSWEB_KEEP if preset == "gneissweb" else None
    base_clauses.update(clauses or {})
    base_params.update(params or {})
    keep = keep or base_keep
    if keep is None:
        raise ConfigError(
            f"{key + '.' if key else ''}keep: required (a rule expression, e.g. 'ft_dclm > 0.5') "
            "unless preset: gneissweb"
        )
    return Rule(keep, base_clauses, base_params, key=key)
