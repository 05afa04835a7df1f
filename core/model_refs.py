"""Where a model file comes from: a local path, or a HuggingFace hub repository.

`resolve_model_file(ref, filename)` returns a local file path. A ref that exists on disk is used
as it is. A ref shaped like `owner/name` (optionally `hf://owner/name`) that is not on disk is a
hub repository: the file is fetched with `huggingface_hub.hf_hub_download` (cached in the usual
HF cache, token from HF_TOKEN). Tests never download: they exercise `classify_ref` and local paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from curate.core.errors import ConfigError

_HUB_ID = re.compile(r"^(?:hf://)?([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)$")

# the file to fetch from well-known repositories when the config gives no `filename`
KNOWN_HUB_FILES: dict[str, str] = {
    "mlfoundations/fasttext-oh-eli5": "openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin",
    "ibm-granite/GneissWeb.Quality_annotator": "fasttext_gneissweb_quality_annotator.bin",
    "ibm-granite/GneissWeb.Med_classifier": "fasttext_medical.bin",
    "ibm-granite/GneissWeb.Edu_classifier": "fasttext_education.bin",
    "ibm-granite/GneissWeb.Tech_classifier": "fasttext_technology_computing.bin",
    "ibm-granite/GneissWeb.Sci_classifier": "fasttext_science.bin",
}


def classify_ref(ref: str) -> tuple[str, str]:
    """('local', path) for an existing file or folder or anything path-like; ('hub', repo_id) for owner/name."""
    expanded = os.path.expanduser(ref)
    if Path(expanded).exists():
        return "local", expanded
    m = _HUB_ID.match(ref)
    if m and not ref.startswith((".", "/", "~")) and Path(m.group(1)).suffix not in (".bin", ".ftz", ".json"):
        return "hub", m.group(1)
    return "local", expanded


def local_candidate(value: str, filename: str | None = None) -> Path:
    """The file a local ref names: the path itself, or `filename` inside it when it is a folder."""
    p = Path(value)
    return p / filename if filename and p.is_dir() else p


def resolve_model_file(
    ref: str, filename: str | None = None, suffixes: tuple[str, ...] = (".bin", ".ftz"), what: str = "model"
) -> str:
    """A local path for `ref`; downloads from the hub when `ref` is a repository id not found on disk."""
    kind, value = classify_ref(ref)
    if kind == "local":
        p = local_candidate(value, filename)
        if not p.is_file():
            raise ConfigError(
                f"{what} {ref!r}: no such file (give a local {'/'.join(suffixes)} path or a hub "
                "repository id like owner/name)"
            )
        return str(p)
    return _download(value, filename, suffixes, what)


def _download(repo_id: str, filename: str | None, suffixes: tuple[str, ...], what: str) -> str:
    try:
        from huggingface_hub import hf_hub_download, list_repo_files
    except ImportError as e:  # pragma: no cover - huggingface_hub comes with datatrove
        raise ConfigError(f"{what} {repo_id!r} is a hub repository but huggingface_hub is not installed") from e
    if filename is None:
        filename = KNOWN_HUB_FILES.get(repo_id)
    if filename is None:
        candidates = [f for f in list_repo_files(repo_id) if f.endswith(suffixes)]
        if len(candidates) != 1:
            raise ConfigError(
                f"{what} {repo_id!r}: cannot tell which file to use ({candidates or 'no ' + '/'.join(suffixes)}"
                "); set `filename:`"
            )
        filename = candidates[0]
    return hf_hub_download(repo_id=repo_id, filename=filename)
