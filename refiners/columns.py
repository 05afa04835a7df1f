"""ProX's output columns and document statuses, defined once.

The refiner writes them (`refiners/stages/prox_refine.py`), applying its programs decides the
statuses (`refiners/apply.py`), and `curate diff` / `curate report` read them back
(`pipeline/inspect/`). A leaf module (no imports), so readers of an output need nothing else
from the refiner.
"""

from __future__ import annotations

# column names (document metadata of the prox_refine stage, Parquet columns of the output)
STATUS = "prox_status"
DOC_PROGRAM = "prox_doc_program"
CHUNK_PROGRAMS = "prox_chunk_programs"
ERRORS = "prox_errors"
EDITS = "prox_edits"
ORIGINAL_TEXT = "prox_original_text"
COLUMN_NAMES = (STATUS, DOC_PROGRAM, CHUNK_PROGRAMS, ERRORS, EDITS, ORIGINAL_TEXT)

# values of the prox_status column
KEPT, DROPPED_BY_DOC, DROPPED_BY_CHUNK, EDITED, IGNORED = (
    "kept",
    "dropped_by_doc",
    "dropped_by_chunk",
    "edited",
    "program_ignored",
)
STATUSES = (KEPT, DROPPED_BY_DOC, DROPPED_BY_CHUNK, EDITED, IGNORED)
DROPPED_STATUSES = (DROPPED_BY_DOC, DROPPED_BY_CHUNK)  # the refiner sends these to rejected/

__all__ = [
    "CHUNK_PROGRAMS",
    "COLUMN_NAMES",
    "DOC_PROGRAM",
    "DROPPED_BY_CHUNK",
    "DROPPED_BY_DOC",
    "DROPPED_STATUSES",
    "EDITED",
    "EDITS",
    "ERRORS",
    "IGNORED",
    "KEPT",
    "ORIGINAL_TEXT",
    "STATUS",
    "STATUSES",
]
