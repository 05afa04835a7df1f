"""The SFT data of `refiner_label`: the row schema, the checks a teacher answer must pass, reading it back.

The stage (refiners/stages/refiner_label.py) writes `OUTPUT/sft/NNNNN.parquet` with `SFT_SCHEMA`;
`curate refiner train` and `eval` read it with `read_sft`. The checks (`doc_target`, `chunk_target`)
turn a teacher's program into the canonical target a student learns, or raise `Invalid(reason)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from curate.core.errors import ConfigError

from .program import CHUNK_CALLS, DOC_CALLS, parse_program
from .prompts import Prompt
from .teachers import chunk_lines, program_text, removal_runs

SFT_FOLDER = "sft"
SFT_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("stage", pa.string()),
        ("chunk", pa.int32()),
        ("first_line", pa.int32()),
        ("last_line", pa.int32()),
        ("prompt", pa.string()),
        ("target", pa.string()),
        ("raw", pa.string()),
        ("teacher", pa.string()),
        ("valid", pa.bool_()),
        ("reason", pa.string()),
        ("capped", pa.bool_()),
    ]
)


# ---------------------------------------------------------------------------- checking one answer


class Invalid(Exception):
    pass


def doc_target(raw: str) -> str:
    prog = parse_program(raw, DOC_CALLS)
    if prog.fatal or prog.errors:
        raise Invalid(f"parse: {prog.errors[0]}")
    for c in prog.calls:
        if c.name in ("drop_doc", "keep_doc"):
            return f"{c.name}()"
    raise Invalid("no decision: needs drop_doc() or keep_doc()")


def chunk_target(raw: str, prompt: Prompt, text: str, max_share: float, over_limit: str) -> tuple[str, bool]:
    """(canonical target, capped?) for a chunk answer, or raise Invalid(reason)."""
    prog = parse_program(raw, CHUNK_CALLS)
    if prog.fatal or prog.errors:
        raise Invalid(f"parse: {prog.errors[0]}")
    lines = chunk_lines(prompt, text)
    body = "\n".join(lines)
    a0, b0 = prompt.first_line, prompt.last_line
    norms: list[tuple[str, str]] = []
    removed: list[int] = []
    for c in prog.calls:
        if c.name == "normalize":
            src, dst = c.arg("source_str"), c.arg("target_str")
            if not src.strip() or "\n" in src or "\n" in dst:
                raise Invalid("normalize: empty source or newline")
            if src not in body:
                raise Invalid("normalize: source not in chunk")
            if (src, dst) not in norms:
                norms.append((src, dst))
        elif c.name == "remove_lines":
            a, b = c.arg("line_start"), c.arg("line_end")
            if a > b or a < a0 or b > b0:
                raise Invalid(f"remove_lines outside chunk lines {a0}-{b0}")
            removed.extend(range(a, b + 1))
    removed = sorted(set(removed))
    nonblank = [a0 + i for i, x in enumerate(lines) if x.strip()]
    limit = int(max_share * len(nonblank))
    gone = [i for i in removed if lines[i - a0].strip()]
    capped = False
    if len(gone) > limit:
        if over_limit == "drop":
            raise Invalid(f"removes {len(gone)} of {len(nonblank)} lines (over max_removed_share)")
        removed = gone[:limit]  # the first lines in line order; blank lines between them rejoin the runs below
        capped = True
    shown = {a0 + i: x for i, x in enumerate(lines)}
    runs = [
        (a, b) for a, b in removal_runs(removed, shown) if any(shown[i].strip() for i in range(a, b + 1))
    ]  # a run of blank lines alone edits nothing
    return program_text(norms, runs), capped


# ---------------------------------------------------------------------------- reading the SFT data back


def read_sft(paths: Iterable[str], valid_only: bool = True) -> list[dict[str, Any]]:
    """SFT rows from Parquet files or folders of them (a label run's OUTPUT/sft, or OUTPUT itself)."""
    import glob
    import os

    import pyarrow.parquet as pq

    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            sub = os.path.join(p, SFT_FOLDER)
            folder = sub if os.path.isdir(sub) and not glob.glob(os.path.join(p, "[0-9]*.parquet")) else p
            files += sorted(glob.glob(os.path.join(folder, "[0-9]*.parquet")))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise ConfigError(f"{p}: no such SFT file or folder (a `curate refiner label` output, or its sft/ folder)")
    rows: list[dict[str, Any]] = []
    for f in files:
        rows += [r for r in pq.read_table(f).to_pylist() if r["valid"] or not valid_only]
    return rows
