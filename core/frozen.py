"""Values a run decides while it runs (a rule's quantile thresholds), frozen where the dataset says how it was made.

A stage that computes such a value writes `{name: value}` to FROZEN_FILE in its work folder
(`ctx.work_path(stage_label, FROZEN_FILE)`); at the end of the run the engine copies every stage's
file into `_curate_run.json` (`frozen`: {stage label: {name: value}}) and the dataset card. The file
stays in the work folder, so a resumed run keeps the value it computed first.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

import fsspec

FROZEN_FILE = "frozen.json"


def frozen_path(intermediate_dir: str, label: str) -> str:
    """Where the stage labelled `label` leaves its values, under the run's intermediate folder."""
    return posixpath.join(intermediate_dir, label, FROZEN_FILE)


def collect(intermediate_dir: str, labels: Iterable[str]) -> dict[str, dict[str, Any]]:
    """{label: values} of every stage that froze something (stages without the file are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for label in labels:
        fs, path = fsspec.core.url_to_fs(frozen_path(intermediate_dir, label))
        if fs.isfile(path):
            with fs.open(path, "rt") as fh:
                out[label] = json.load(fh)
    return out
