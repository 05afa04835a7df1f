"""Select documents of a run's output (kept and rejected Parquet), read one row group at a time.

`curate diff` must browse a 100k-document output without loading it: every file is opened
with `pyarrow.parquet.ParquetFile` and read row group by row group. Selection first reads only
the cheap columns (id, status, drop stage; the text only when `--grep` needs it), and reads the
full row group only when one of its rows matches. `--sample N` keeps a reservoir of N row
*locations* (file, row group, row), not documents, and fetches them at the end, so memory stays
bounded by one row group plus N documents whatever the output size.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow.parquet as pq

from curate.core.edits import EDITS
from curate.core.errors import CurateError
from curate.refiners import columns as prox

from .statuses import STATUS_HELP

# what a document's status can be (prox_status values, plus "dropped" for other stages' drops), in display order
DROPPED = "dropped"
STATUSES = (prox.KEPT, prox.EDITED, prox.IGNORED, prox.DROPPED_BY_DOC, prox.DROPPED_BY_CHUNK, DROPPED)
# --status words: each maps to a predicate on (status, has_errors, drop_stage)
_ALIASES = {"ignored": prox.IGNORED, "program-ignored": prox.IGNORED, "unchanged": prox.KEPT}
_BASE = ("id", "text", "source_file", "source_record", "drop_stage", "drop_reason", EDITS)
_CHEAP = ("id", prox.STATUS, "drop_stage")
# the one leaf of the edits column that selection by stage needs (not the spans' text)
_EDIT_STAGES = f"{EDITS}.list.element.stage"


@dataclass(frozen=True)
class OutputFile:
    path: str
    where: str  # "data" or "rejected"
    stage: str | None = None  # the rejected/<stage>/ folder


@dataclass
class Record:
    """One document of the output, with everything `curate diff` shows."""

    id: str
    text: str
    status: str
    where: str
    source_file: str | None = None
    source_record: int | None = None
    drop_stage: str | None = None
    drop_reason: str | None = None
    doc_program: str | None = None
    chunk_programs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    edits: str | None = None
    original_text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # every stage's changes to the text (core/edits.py), in pipeline order; [] when none were recorded
    stage_edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def annotations(self) -> dict[str, str]:
        """The document's numeric and boolean columns (scores, flags, counts), formatted: what a reader
        needs to see why a filter dropped it."""
        out = {}
        for k, v in self.extra.items():
            if isinstance(v, bool):
                out[k] = "true" if v else "false"
            elif isinstance(v, int):
                out[k] = str(v)
            elif isinstance(v, float):
                out[k] = f"{v:.4g}"
        return out

    @property
    def source(self) -> str:
        if self.source_file is None:
            return ""
        return f"{self.source_file}" + (f" #{self.source_record}" if self.source_record is not None else "")


def classify(where: str, prox_status: str | None) -> str:
    if where == "rejected":
        return prox_status if prox_status in prox.DROPPED_STATUSES else DROPPED
    return prox_status or prox.KEPT


@dataclass
class Selection:
    ids: set[str] | None = None
    statuses: list[str] | None = None
    grep: re.Pattern[str] | None = None
    limit: int | None = None
    sample: int | None = None
    seed: int = 0
    # at most this many documents of each status (the HTML page's default: every status shows up)
    per_status: int | None = None
    taken: Counter[str] = field(default_factory=Counter)
    # documents these stages edited or dropped (--stage)
    stages: list[str] | None = None

    @staticmethod
    def build(
        ids: Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
        grep: str | None = None,
        ignore_case: bool = False,
        limit: int | None = None,
        sample: int | None = None,
        seed: int = 0,
        per_status: int | None = None,
        stages: str | Iterable[str] | None = None,
    ) -> Selection:
        words: list[str] | None = None
        if status:
            raw = status.split(",") if isinstance(status, str) else [w for s in status for w in s.split(",")]
            words = []
            for w in (x.strip().lower() for x in raw if x.strip()):
                w = _ALIASES.get(w, w)
                if w not in STATUSES and w != "errors" and not w.startswith(("dropped:", "edited:")):
                    raise CurateError(f"--status: unknown status {w!r}; use {STATUS_HELP}")
                words.append(w)
        pattern = None
        if grep:
            try:
                pattern = re.compile(grep, re.IGNORECASE if ignore_case else 0)
            except re.error as e:
                raise CurateError(f"--grep: bad regular expression {grep!r}: {e}") from None
        if sample is not None and sample < 1:
            raise CurateError("--sample must be at least 1")
        names = None
        if stages:
            raw = stages.split(",") if isinstance(stages, str) else [w for s in stages for w in s.split(",")]
            names = [w.strip() for w in raw if w.strip()] or None
        sel = Selection(set(ids) if ids else None, words, pattern, limit, sample, seed, per_status)
        sel.stages = names
        return sel

    def needs_errors(self) -> bool:
        return bool(self.statuses and "errors" in self.statuses)

    def needs_edit_stages(self) -> bool:
        return bool(self.stages or any(w.startswith("edited:") for w in self.statuses or ()))

    def stage_ok(self, status: str, drop_stage: str | None, edited_by: Iterable[str]) -> bool:
        """--stage: the document was edited or dropped by one of the stages."""
        if not self.stages:
            return True
        touched = set(edited_by) | ({drop_stage} if status.startswith("dropped") and drop_stage else set())
        return bool(touched & set(self.stages))

    def status_ok(self, status: str, has_errors: bool, drop_stage: str | None, edited_by: Iterable[str] = ()) -> bool:
        if not self.statuses:
            return True
        for w in self.statuses:
            if w.startswith("="):  # internal: exactly this status ("dropped" alone, without the ProX drops)
                if w[1:] == status:
                    return True
                continue
            if w == status or (w == "errors" and has_errors):
                return True
            if w == "dropped" and status.startswith("dropped"):
                return True
            if w.startswith("dropped:") and status.startswith("dropped") and drop_stage == w.split(":", 1)[1]:
                return True
            if w.startswith("edited:") and w.split(":", 1)[1] in edited_by:
                return True
        return False


def _fs(output: str) -> tuple[Any, str]:
    fs, root = fsspec.core.url_to_fs(output)
    return fs, root.rstrip("/")


RUN_FILES = ("_curate_run.json", "stats.json")


def output_files(output: str) -> list[OutputFile]:
    """The kept files (`data/*.parquet`), then the rejected ones (`rejected/STAGE/*.parquet`).

    Only those two places are read: anything else in the folder (a dataset card, report.html, a
    work folder of an older layout, `.partial` files of a running write) is not output. A run
    that dropped every document may have no Parquet at all; its run files make it an output with
    no documents ([]), not an error.
    """
    fs, root = _fs(output)
    if not fs.isdir(root):
        raise CurateError(f"{output}: no such output folder")
    files = [
        OutputFile(p, "data")
        for p in sorted(fs.glob(f"{root}/data/*.parquet"))
        if not p.rsplit("/", 1)[-1].startswith(".")
    ]
    for p in sorted(fs.glob(f"{root}/rejected/*/*.parquet")):
        if not p.rsplit("/", 1)[-1].startswith("."):
            files.append(OutputFile(p, "rejected", p.rsplit("/", 2)[-2]))
    if not files and not any(fs.isfile(f"{root}/{name}") for name in RUN_FILES):
        raise CurateError(
            f"{output}: no Parquet output under data/ or rejected/ and no {RUN_FILES[0]} "
            f"(is this a curate output folder?)"
        )
    return files


def count_documents(output: str) -> int:
    """Documents in the whole output (kept and rejected), from the Parquet footers only."""
    return sum(open_parquet(output, f).metadata.num_rows for f in output_files(output))


def empty_note(output: str) -> str:
    """One line saying why an output holds no documents, from its stats.json when there is one."""
    info = read_run_info(output)
    stats, run = info["stats"], info["run"]
    msg = f"{output.rstrip('/')} holds no documents"
    if stats:
        n_in = stats.get("input_records")
        stages = [
            s for s in stats.get("stages", []) if s.get("dropped_total") or any((s.get("dropped") or {}).values())
        ]
        reasons = ", ".join(
            f"{s.get('label')}: " + ", ".join(f"{k} {v:,}" for k, v in (s.get("dropped") or {}).items() if v)
            for s in stages
        )
        if n_in == 0:
            msg += ": the run read no input document"
        elif n_in is not None:
            msg += f": every one of the {n_in:,} input document(s) was dropped" + (f" ({reasons})" if reasons else "")
        if not stats.get("complete", True):
            msg += "; the run is not complete yet"
    keep = ((run.get("decisive") or {}).get("output") or {}).get("keep_rejected")
    if keep is False:
        msg += "; dropped documents were not kept (set output.keep_rejected: true to see them here)"
    return msg


def open_parquet(output: str, f: OutputFile) -> pq.ParquetFile:
    """One output file, footer read only; a file pyarrow cannot read is a CurateError naming it."""
    fs, _ = _fs(output)
    try:
        return pq.ParquetFile(fs.open(f.path, "rb"))
    except Exception as e:  # noqa: BLE001 - name the file whatever pyarrow raises
        raise CurateError(f"{f.path}: cannot read Parquet ({e})") from None


def _cols(pf: pq.ParquetFile, wanted: Iterable[str]) -> list[str]:
    names = set(pf.schema_arrow.names)
    return [c for c in wanted if c in names]


def _record(row: dict[str, Any], f: OutputFile) -> Record:
    status = classify(f.where, row.get(prox.STATUS))
    extra = {
        k: v
        for k, v in row.items()
        if k not in _BASE and k not in prox.COLUMN_NAMES and isinstance(v, (str, int, float))
    }
    return Record(
        id=str(row.get("id")),
        text=row.get("text") or "",
        status=status,
        where=f.where,
        source_file=row.get("source_file"),
        source_record=row.get("source_record"),
        drop_stage=row.get("drop_stage") or f.stage,
        drop_reason=row.get("drop_reason"),
        doc_program=row.get(prox.DOC_PROGRAM),
        chunk_programs=list(row.get(prox.CHUNK_PROGRAMS) or []),
        errors=list(row.get(prox.ERRORS) or []),
        edits=row.get(prox.EDITS),
        original_text=row.get(prox.ORIGINAL_TEXT),
        extra=extra,
        stage_edits=list(row.get(EDITS) or []),
    )


def _matches(sel: Selection, pf: pq.ParquetFile, rg: int, f: OutputFile) -> list[int]:
    """Indices of matching rows in one row group, reading only the columns the selection needs."""
    want = list(_CHEAP)
    if sel.needs_errors():
        want.append(prox.ERRORS)
    if sel.grep is not None:
        want += ["text", prox.ORIGINAL_TEXT]
    cols = _cols(pf, want)
    if sel.needs_edit_stages() and EDITS in pf.schema_arrow.names:
        cols.append(_EDIT_STAGES)
    t = pf.read_row_group(rg, columns=cols)
    n = t.num_rows
    col = {c: t.column(c).to_pylist() for c in t.column_names}
    ids = col.get("id", [None] * n)
    status = col.get(prox.STATUS, [None] * n)
    stage = col.get("drop_stage", [f.stage] * n)
    errs = col.get(prox.ERRORS, [None] * n)
    text = col.get("text", [None] * n)
    orig = col.get(prox.ORIGINAL_TEXT, [None] * n)
    edited = [{e["stage"] for e in eds or ()} for eds in col.get(EDITS, [None] * n)]
    out = []
    for i in range(n):
        if sel.ids is not None and ids[i] not in sel.ids:
            continue
        st = classify(f.where, status[i])
        if not sel.status_ok(st, bool(errs[i]), stage[i] or f.stage, edited[i]):
            continue
        if not sel.stage_ok(st, stage[i] or f.stage, edited[i]):
            continue
        if sel.grep is not None and not (sel.grep.search(text[i] or "") or sel.grep.search(orig[i] or "")):
            continue
        if sel.per_status is not None:
            if sel.taken[st] >= sel.per_status:
                continue
            sel.taken[st] += 1
        out.append(i)
    return out


def _read_rows(pf: pq.ParquetFile, rg: int, idx: list[int], f: OutputFile) -> list[Record]:
    t = pf.read_row_group(rg).take(idx)
    return [_record(r, f) for r in t.to_pylist()]


def select(output: str, sel: Selection) -> Iterator[Record]:
    """The selected documents, streamed in output order (or a seeded random sample of them)."""
    if sel.sample is not None:
        yield from _sample(output, sel)
        return
    left = sel.limit
    for f in output_files(output):
        pf = open_parquet(output, f)
        for rg in range(pf.metadata.num_row_groups):
            idx = _matches(sel, pf, rg, f)
            if not idx:
                continue
            if left is not None:
                idx = idx[:left]
            yield from _read_rows(pf, rg, idx, f)
            if left is not None:
                left -= len(idx)
                if left <= 0:
                    return
            if sel.ids is not None and len(sel.ids) == 1:
                return  # ids are unique: stop at the first hit


# the order `curate diff` shows documents in when no status is asked for (the HTML page's order too):
# what the pipeline changed first, untouched documents last
CHANGED_FIRST = (prox.EDITED, prox.IGNORED, prox.DROPPED_BY_CHUNK, prox.DROPPED_BY_DOC, DROPPED, prox.KEPT)


def select_changed_first(output: str, sel: Selection) -> Iterator[Record]:
    """Like `select`, but the documents of each status in CHANGED_FIRST order: one pass per status
    over the cheap columns, stopping when the limit is reached (20 by default in the terminal)."""
    left = sel.limit
    for status in CHANGED_FIRST:
        if left is not None and left <= 0:
            return
        sub = Selection(sel.ids, [f"={status}"], sel.grep, left, None, sel.seed, sel.per_status, sel.taken, sel.stages)
        for r in select(output, sub):
            yield r
            if left is not None:
                left -= 1


def _sample(output: str, sel: Selection) -> Iterator[Record]:
    rng = random.Random(sel.seed)
    k = sel.sample or 0
    reservoir: list[tuple[int, int, int]] = []
    seen = 0
    files = output_files(output)
    for fi, f in enumerate(files):
        pf = open_parquet(output, f)
        for rg in range(pf.metadata.num_row_groups):
            for i in _matches(sel, pf, rg, f):
                seen += 1
                if len(reservoir) < k:
                    reservoir.append((fi, rg, i))
                else:  # Algorithm R: every match ends up in the sample with probability k/seen
                    j = rng.randrange(seen)
                    if j < k:
                        reservoir[j] = (fi, rg, i)
    reservoir.sort()
    if sel.limit is not None:
        reservoir = reservoir[: sel.limit]
    by_group: dict[tuple[int, int], list[int]] = {}
    for fi, rg, i in reservoir:
        by_group.setdefault((fi, rg), []).append(i)
    for (fi, rg), idx in by_group.items():
        yield from _read_rows(open_parquet(output, files[fi]), rg, idx, files[fi])


def status_counts(output: str) -> dict[str, int]:
    """Documents per status over the whole output, reading only the status columns."""
    counts: Counter[str] = Counter()
    for f in output_files(output):
        pf = open_parquet(output, f)
        cols = _cols(pf, [prox.STATUS])
        if not cols:
            counts[classify(f.where, None)] += pf.metadata.num_rows
            continue
        for rg in range(pf.metadata.num_row_groups):
            for s in pf.read_row_group(rg, columns=cols).column(0).to_pylist():
                counts[classify(f.where, s)] += 1
    return {s: counts[s] for s in STATUSES if counts[s]}


def edit_counts(output: str) -> dict[str, int]:
    """Documents each stage edited, over the whole output (reading only the edits' stage names)."""
    out: Counter[str] = Counter()
    for f in output_files(output):
        pf = open_parquet(output, f)
        if EDITS not in pf.schema_arrow.names:
            continue
        for rg in range(pf.metadata.num_row_groups):
            for eds in pf.read_row_group(rg, columns=[_EDIT_STAGES]).column(0).to_pylist():
                out.update({e["stage"] for e in eds or ()})
    return dict(out)


def read_run_info(output: str) -> dict[str, Any]:
    """`_curate_run.json` (the decisive config) and `stats.json`, each {} when missing."""
    fs, root = _fs(output)
    info: dict[str, Any] = {}
    for key, name in (("run", "_curate_run.json"), ("stats", "stats.json")):
        path = f"{root}/{name}"
        if fs.isfile(path):
            with fs.open(path, "rt") as fh:
                try:
                    info[key] = json.load(fh)
                except json.JSONDecodeError as e:
                    raise CurateError(f"{path}: not valid JSON ({e})") from None
        else:
            info[key] = {}
    return info
