"""Check before work what can be known before work: a run that starts must not fail later for a
reason the config already holds.

`preflight(config)` runs in the process that starts a run (and in `curate validate` / `curate plan`):
the input path exists and matches files, every model, tokenizer and model folder a stage names
exists and loads (fastText: a real model with the configured label; tokenizers parse; refiner
folders hold a config and weights), and every name a rule uses is a clause, a param or a column
the input or an earlier stage produces. Models named by hub id are resolved here, once: downloaded
into the HF cache, or found there when offline, and the stage's option is pointed at the local
file, so thousands of tasks never each ask the hub. Stages add their checks with
`@register_prepare(name)` next to their registration; every problem is collected and reported
together, one line each, naming the key and the fix.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path

from curate.core.errors import ConfigError
from curate.core.model_refs import KNOWN_HUB_FILES, classify_ref, local_candidate, resolve_model_file
from curate.core.stage_api import get_prepare, get_stage

from .config import CurateConfig
from .readers import SOURCE_FILE, SOURCE_RECORD, input_field_names, is_remote, list_input_files
from .tokenize_output import prepare_tokenize

_HUB_ATTEMPTS: dict[tuple[str, str | None, str], str | Exception] = {}  # one answer per process


class Preflight:
    """What a stage's prepare function uses: report problems, resolve and check files, known columns."""

    def __init__(self, config: CurateConfig, input_fields: set[str] | None, download: bool = True) -> None:
        self.config = config
        self.download = download  # False (validate, plan): look in the HF cache, else only ask the hub
        self.problems: list[str] = []
        self.input_fields = input_fields  # None: unknown (remote input)
        self.columns: set[str] = {"id", "text", SOURCE_FILE, SOURCE_RECORD}
        self.key = ""

    # -- reporting -------------------------------------------------------------------------------
    def problem(self, message: str, key: str | None = None) -> None:
        self.problems.append(f"{key or self.key}: {message}")

    # -- files -----------------------------------------------------------------------------------
    def model_file(
        self,
        ref: str,
        key: str,
        filename: str | None = None,
        suffixes: tuple[str, ...] = (".bin", ".ftz"),
        what: str = "model",
    ) -> str | None:
        """A local file for `ref` (a path, or a hub id resolved once into the HF cache); None after a problem."""
        kind, value = classify_ref(ref)
        if kind == "local":
            p = local_candidate(value, filename)
            if not p.is_file():
                self.problem(
                    f"{what} {ref!r} not found"
                    + (f" (looked for {p})" if str(p) != ref else "")
                    + f"; give an existing {'/'.join(suffixes)} file or a hub id (owner/name)",
                    key,
                )
                return None
            return str(p)
        return self._hub(value, filename, key, what, suffixes)

    def is_local(self, path: str | None) -> bool:
        """False for a hub reference checked but not downloaded (validate / plan)."""
        return path is not None and not path.startswith(_ON_HUB)

    def model_folder(self, ref: str, key: str, what: str = "model folder") -> str | None:
        """A local model folder (config.json + weights); a hub id is downloaded (or found in the cache) once."""
        kind, value = classify_ref(ref)
        folder = value if kind == "local" else self._hub(value, None, key, what, (), snapshot=True)
        if folder is None or not self.is_local(folder):
            return folder
        p = Path(folder)
        if not p.is_dir():
            self.problem(f"{what} {ref!r} not found; give a local folder (config.json + weights) or a hub id", key)
            return None
        missing = []
        if not (p / "config.json").is_file():
            missing.append("config.json")
        if not any(p.glob("*.safetensors")) and not any(p.glob("pytorch_model*.bin")):
            missing.append("weights (*.safetensors or pytorch_model*.bin)")
        if missing:
            self.problem(f"{what} {ref!r} ({p}) has no {' and no '.join(missing)}", key)
            return None
        return str(p)

    def _hub(
        self, repo: str, filename: str | None, key: str, what: str, suffixes: tuple[str, ...], snapshot: bool = False
    ) -> str | None:
        cache_key = (repo, filename, ("snapshot" if snapshot else "file") + ("" if self.download else ":check"))
        if cache_key not in _HUB_ATTEMPTS:
            _HUB_ATTEMPTS[cache_key] = (
                _fetch_from_hub(repo, filename, suffixes, snapshot)
                if self.download
                else _check_on_hub(repo, filename, snapshot)
            )
        got = _HUB_ATTEMPTS[cache_key]
        if isinstance(got, Exception):
            self.problem(
                f"{what} {repo!r} is not available from the hub or the local HF cache ({_short(got)}); "
                "download it once where the hub is reachable (hf download REPO FILE), or give a local path",
                key,
            )
            return None
        return got

    def tokenizer_file(self, ref: str, key: str, filename: str = "tokenizer.json") -> str | None:
        """A tokenizer.json (file, folder holding one, or hub id) that HF `tokenizers` parses."""
        path = self.model_file(ref, key, filename=filename, suffixes=(".json",), what="tokenizer")
        if path is None or not self.is_local(path):
            return path
        try:
            from tokenizers import Tokenizer

            Tokenizer.from_file(path)
        except Exception as e:  # tokenizers raises a bare Exception on a bad file
            self.problem(f"tokenizer {path} does not parse: {_short(e)}", key)
            return None
        return path

    # -- columns ---------------------------------------------------------------------------------
    def check_names(self, names: Iterable[str], key: str, own: Iterable[str] = ()) -> None:
        """Every name must be a column of the input or of an earlier stage (or of this stage: `own`)."""
        known = self.columns | set(own)
        for name in sorted(set(names)):
            if name in known or (self.input_fields is None) or name in self.input_fields:
                continue
            pool = sorted(known | (self.input_fields or set()))
            hint = difflib.get_close_matches(name, pool, n=1)
            self.problem(
                f"{name!r} is not a clause, a param, or a column of the input or an earlier stage"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; columns here: {', '.join(sorted(known - {'text'}))}",
                key,
            )


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first[:160]}" if first else type(e).__name__


def _fetch_from_hub(repo: str, filename: str | None, suffixes: tuple[str, ...], snapshot: bool) -> str | Exception:
    try:
        if snapshot:
            from huggingface_hub import snapshot_download

            return snapshot_download(repo_id=repo)
        return resolve_model_file(repo, filename, suffixes)
    except Exception as e:  # network, auth, missing repo or file: every one means "not available"
        return e


_ON_HUB = "hub-unchecked:"


def _check_on_hub(repo: str, filename: str | None, snapshot: bool) -> str | Exception:
    """Without downloading: the cached file, else proof that the hub has it (a marker path)."""
    try:
        from huggingface_hub import HfApi, try_to_load_from_cache

        if filename is None and not snapshot:
            filename = KNOWN_HUB_FILES.get(repo)
        if filename is not None:
            cached = try_to_load_from_cache(repo, filename)
            if isinstance(cached, str):
                return cached
            from huggingface_hub import get_hf_file_metadata, hf_hub_url

            get_hf_file_metadata(hf_hub_url(repo, filename))
        else:
            HfApi().model_info(repo)
        return f"{_ON_HUB}{repo}/{filename or ''}"
    except Exception as e:
        return e


def input_fields(config: CurateConfig, records: int = 100) -> set[str] | None:
    """Field names of the input, from the first records of the first file (None: remote, not looked at)."""
    return input_field_names(config.input, records)


def check_input(config: CurateConfig) -> list[str]:
    cfg = config.input
    if is_remote(cfg.path):
        return []
    try:
        files = list_input_files(cfg)
    except ConfigError as e:
        return e.problems
    if not files:
        return [
            f"input.path: no files under {cfg.path!r}"
            + (f" match glob {cfg.glob!r}" if cfg.glob else "")
            + " (check the path, the glob and input.recursive)"
        ]
    return []


def check_output(config: CurateConfig) -> list[str]:
    problems = []
    for key, path in (("output.path", config.output.path), ("output.work_dir", config.output.work_dir)):
        if not path or is_remote(path):
            continue
        local = path[len("file://") :] if path.startswith("file://") else path
        if os.path.isfile(local):
            problems.append(f"{key}: {path!r} is a file; give a folder (it is created if missing)")
            continue
        parent = local
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent.rstrip("/")) or ""
        if parent and os.path.isfile(parent):
            problems.append(f"{key}: {path!r} is inside {parent!r}, which is a file")
        elif parent and not os.access(parent, os.W_OK):
            problems.append(f"{key}: cannot create {path!r}: {parent!r} is not writable")
    return problems


def preflight(config: CurateConfig, download: bool = True) -> None:
    """Raise one ConfigError listing every problem found.

    With `download` (the start of a run) hub references are fetched into the HF cache and the stage
    options point at the local files; without (validate, plan) the cache is looked at and the hub asked.
    """
    from .plan import stage_columns

    problems = check_input(config) + check_output(config)
    fields = input_fields(config) if not problems else None
    pf = Preflight(config, fields, download)
    pf.columns |= set(config.output.metadata_columns) & (fields or set())
    for i, entry in enumerate(config.entries):
        pf.key = f"stages[{i}]" + (f" ({entry.label})" if entry.label != entry.stage else "")
        prepare = get_prepare(entry.stage)
        if prepare is not None:
            prepare(entry.options, pf)
        get_stage(entry.stage)  # registered (parse_config checked)
        pf.columns |= {c.name for c in stage_columns([entry])}
    if config.output.tokenize is not None:  # its tokenizer is resolved like a stage's
        prepare_tokenize(config.output.tokenize, pf)
    problems += pf.problems
    if problems:
        raise ConfigError(problems, config._source)
