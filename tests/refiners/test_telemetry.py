"""Model-generation telemetry: a stage's gen/* counters become tokens/s, device-seconds and device-hours per
billion input tokens in stats.json and a table beside the summary (pipeline/stats.py)."""

from __future__ import annotations

import io

from rich.console import Console

from curate.pipeline.stats import generation_record, print_summary, step_record


def test_counters_become_rates_and_cost_per_billion_input_tokens() -> None:
    # 2 tasks' counters as datatrove sums them: 1.8M input tokens read, 90k written, in 3,600 device-seconds
    counters = {
        "docs_in": 100,
        "docs_out": 100,
        "gen/prompts": 400,
        "gen/prompt_tokens": 1_800_000,
        "gen/generated_tokens": 90_000,
        "gen/device_ms": 3_600_000,
        "gen/restored_docs": 7,
    }
    rec = step_record("prox_refine", "refine", False, counters, 3600.0)
    g = rec["generation"]
    assert g["prompts"] == 400 and g["restored_docs"] == 7 and g["device_s"] == 3600.0
    assert g["generated_tokens_per_s"] == 25.0 and g["input_tokens_per_s"] == 500.0
    assert g["device_hours_per_1b_input_tokens"] == round(1 / 1.8e-3, 3)  # 1 h per 1.8M tokens
    assert generation_record({"docs_in": 3}) is None  # a stage without a model has no such record
    assert generation_record({"gen/prompts": 2}) is None  # nor one whose backend needs no model
    assert "generation" not in step_record("length_filter", "main", False, {"docs_in": 3, "docs_out": 3}, 0.1)

    out = io.StringIO()
    stats = {"run": "r", "complete": True, "stages": [rec]}
    print_summary(stats, Console(file=out, width=200))
    text = out.getvalue()
    assert "model generation" in text and "555.6" in text and "1,800,000" in text and "+7 docs restored" in text

    # the dataset card says the same
    from curate.pipeline.dataset_card import generation_section

    card = "\n".join(generation_section(stats))
    assert (
        "## Model generation" in card and "| prox_refine | 400 | 1,800,000 | 90,000 | 25.0 | 3,600.0 | 555.56 |" in card
    )
    assert generation_section({"stages": [step_record("length_filter", "main", False, {"docs_in": 1}, 0.1)]}) == []

    # and the report page
    from curate.pipeline.inspect.report import generation_sections

    (page,) = generation_sections(stats)
    assert "id=generation" in page and "<td class=n>1,800,000</td>" in page and "<td class=n>555.56</td>" in page
