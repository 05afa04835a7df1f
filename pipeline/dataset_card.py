"""The dataset card: `OUTPUT/README.md`, so the output folder is a dataset that loaders understand.

Its YAML front matter has the `configs:` block of the HF Hub dataset-card format: `default` is the
kept documents (`data/*.parquet`), `rejected` the dropped ones with their stage and reason (when
`output.keep_rejected`). `datasets.load_dataset(OUT)` therefore loads the kept documents and
`load_dataset(OUT, "rejected")` the rest; the body describes every column, the stages with their
counts, and the exact config of the run.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import yaml
from datatrove.io import get_datafolder

from curate.core import frozen
from curate.core.atomic import write_atomic

from .fingerprint import curate_version
from .layout import CARD_FILE
from .plan import Plan
from .writers import BASE_COLUMNS, REJECTED_COLUMNS

TOKENS_HEADING = "## Tokens"


def _front_matter(plan: Plan, has_rejected: bool) -> str:
    configs: list[dict[str, Any]] = [
        {"config_name": "default", "default": True, "data_files": [{"split": "train", "path": "data/*.parquet"}]}
    ]
    if has_rejected:
        configs.append({"config_name": "rejected", "data_files": [{"split": "train", "path": "rejected/*/*.parquet"}]})
    meta = {"configs": configs, "tags": ["curate", "pretraining", "text"], "pretty_name": plan.config.name}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _descriptions(plan: Plan) -> dict[str, str]:
    out = {c.name: c.description for c in BASE_COLUMNS + REJECTED_COLUMNS}
    out.update(dict.fromkeys(plan.config.output.metadata_columns, "copied from the input"))
    out.update({c.name: c.description for c in plan.columns})
    return out


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def card_text(plan: Plan, stats: dict[str, Any], has_rejected: bool) -> str:
    desc = _descriptions(plan)
    lines = [
        _front_matter(plan, has_rejected),
        f"# {plan.config.name}",
        "",
        f"Made with curate {curate_version()} on {_dt.date.today().isoformat()} from "
        f"`{plan.config.input.path}` ({plan.config.input.format}): {stats.get('input_records', 0):,} input records, "
        f"{stats.get('output_docs', 0):,} documents kept.",
        "",
        "Kept documents are in `data/`"
        + (", dropped ones with `drop_stage` and `drop_reason` in `rejected/STAGE/`" if has_rejected else "")
        + ". Load them with",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'kept = load_dataset("{plan.output_dir}", split="train")'
        + (f'\nrejected = load_dataset("{plan.output_dir}", "rejected", split="train")' if has_rejected else ""),
        "```",
        "",
        "## Columns",
        "",
        "| column | type | description |",
        "| --- | --- | --- |",
    ]
    for f in plan.schema:
        lines.append(f"| `{f.name}` | {_cell(f.type)} | {_cell(desc.get(f.name, ''))} |")
    lines += [
        "",
        "## Stages",
        "",
        "| stage | docs in | docs out | dropped | top drop reasons | conserved |",
        "| --- | ---: | ---: | ---: | --- | :---: |",
    ]
    for s in stats.get("stages", []):
        if "docs_in" not in s or (s.get("plumbing") and s["label"] != "write"):
            continue
        reasons = ", ".join(f"{k} {v:,}" for k, v in list(s.get("dropped", {}).items())[:4])
        lines.append(
            f"| {_cell(s['label'])} | {s['docs_in']:,} | {s['docs_out']:,} | {s['dropped_total']:,} | "
            f"{_cell(reasons)} | {'yes' if s.get('conserved') else 'NO'} |"
        )
    lines += frozen_section(frozen.collect(plan.intermediate_dir, [e.label for e in plan.config.entries]))
    lines += contamination_section(stats)
    lines += generation_section(stats)
    lines += tokens_section(stats.get("tokens"))
    config_yaml = yaml.safe_dump(plan.config.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    lines += ["", "## Config", "", "```yaml", config_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def frozen_section(values: dict[str, dict[str, Any]]) -> list[str]:
    """The values the run decided (a rule's quantile thresholds): what the config alone does not say."""
    if not values:
        return []
    lines = ["", "## Values computed by the run", "", "| stage | name | value |", "| --- | --- | ---: |"]
    for label, named in values.items():
        lines += [f"| {_cell(label)} | `{_cell(k)}` | {v:.6g} |" for k, v in named.items()]
    return lines


def contamination_section(stats: dict[str, Any]) -> list[str]:
    """`## Contamination`: per eval set of each decontaminate stage, what was found (stats.json's report)."""
    lines: list[str] = []
    for s in stats.get("stages", []):
        rep = s.get("report") or {}
        if rep.get("kind") != "decontamination":
            continue
        if not lines:
            lines = [
                "",
                "## Contamination",
                "",
                "| stage | eval set | documents hit | contaminated | n-grams hit | eval items hit |",
                "| --- | --- | ---: | ---: | ---: | ---: |",
            ]
        for name, r in rep.get("sets", {}).items():
            lines.append(
                f"| {_cell(s['label'])} (mode {_cell(str(rep.get('mode')))}) | {_cell(name)} | {r['docs_hit']:,} | "
                f"{r['docs_contaminated']:,} | {r['ngrams_hit']:,} | {r.get('items_hit', 0):,} of "
                f"{r.get('eval_items', 0):,} |"
            )
    return lines


def generation_section(stats: dict[str, Any]) -> list[str]:
    """`## Model generation`: what each stage that ran a model cost (stats.json's `generation` records)."""
    rows = [(s["label"], s["generation"]) for s in stats.get("stages", []) if s.get("generation")]
    if not rows:
        return []
    lines = [
        "",
        "## Model generation",
        "",
        "| stage | prompts | input tokens | generated tokens | generated tokens/s | device-s | device-h per 1B input tokens |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, g in rows:
        lines.append(
            f"| {_cell(label)} | {g['prompts']:,} | {g['prompt_tokens']:,} | {g['generated_tokens']:,} | "
            f"{g['generated_tokens_per_s']:,.1f} | {g['device_s']:,.1f} | {g['device_hours_per_1b_input_tokens']:,.2f} |"
        )
    return lines


def tokens_section(tokens: dict[str, Any] | None) -> list[str]:
    """`## Tokens`: the token shards' format, tokenizer and counts per file (from stats.json's `tokens`)."""
    if not tokens:
        return []
    lines = [
        "",
        TOKENS_HEADING,
        "",
        f"{tokens['tokens']:,} tokens in {tokens['documents']:,} documents, {tokens['format']} format "
        f"({tokens['dtype']} ids), tokenizer `{tokens['tokenizer']}`, "
        + (f"`{tokens['eos']}` after every document." if tokens.get("eos") else "no EOS token added."),
        "",
        "| file | documents | tokens |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{_cell(name)}` | {f['documents']:,} | {f['tokens']:,} |" for name, f in tokens["files"].items()]
    return lines


def replace_tokens_section(card: str, tokens: dict[str, Any]) -> str:
    """The card with its `## Tokens` section replaced or, when it has none, put before `## Config`
    (`curate tokenize` on an existing output)."""
    section = "\n".join(tokens_section(tokens)).strip("\n") + "\n"
    head, found, rest = card.partition(TOKENS_HEADING)
    if found:
        tail = rest[rest.find("\n## ") + 1 :] if "\n## " in rest else ""
        return head + section + ("\n" + tail if tail else "")
    head, found, rest = card.partition("## Config")
    return head + section + "\n" + found + rest if found else card.rstrip("\n") + "\n\n" + section


def write_dataset_card(plan: Plan, stats: dict[str, Any]) -> str:
    out = get_datafolder(plan.output_dir)
    has_rejected = (
        plan.config.output.keep_rejected
        and out.isdir("rejected")
        and bool([f for f in out.list_files("rejected") if f.endswith(".parquet")])
    )
    write_atomic(out, CARD_FILE, card_text(plan, stats, has_rejected))
    return CARD_FILE
