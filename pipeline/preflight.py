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
import importlib.util
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from curate.core.errors import ConfigError
from curate.core.model_refs import KNOWN_HUB_FILES, classify_ref, local_candidate, resolve_model_file
from curate.core.stage_api import get_prepare, get_stage

from .config import CurateConfig
from .readers import (
    SOURCE_FILE,
    SOURCE_RECORD,
    TYPE_SAMPLE_RECORDS,
    ColumnTypes,
    input_column_types,
    input_field_names,
    input_files,
    is_remote,
    skipped_files_note,
)
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


def check_input(config: CurateConfig, notes: list[str] | None = None) -> list[str]:
    """The input exists and holds files of its format; `notes` gets how many were skipped for their extension."""
    cfg = config.input
    if is_remote(cfg.path):
        return []
    try:
        files, skipped = input_files(cfg)
    except ConfigError as e:
        return e.problems
    if notes is not None and skipped:
        notes.append(skipped_files_note(cfg, skipped))
    if not files:
        return [
            f"input.path: no files under {cfg.path!r}"
            + (f" match glob {cfg.glob!r}" if cfg.glob else "")
            + (f" ({skipped} skipped for their extension)" if skipped else "")
            + " (check the path, the glob and input.recursive)"
        ]
    return []


def _local(path: str) -> str | None:
    """The local path a configured path names (None: remote, checked by the first write)."""
    if not path or is_remote(path):
        return None
    return path[len("file://") :] if path.startswith("file://") else path


def check_output(config: CurateConfig) -> list[str]:
    """The output and work folders can be written (probed without leaving anything behind) and lie apart
    from the input: written into the source data, the dataset would be read as input by the next run
    (and `clean` would remove input lying in the work folder)."""
    from .layout import default_work_dir

    out = config.output.path
    try:
        work = config.output.work_dir or default_work_dir(out)
    except ConfigError as e:
        return e.problems
    problems = []
    for key, path in (("output.path", out), ("output.work_dir", work)):
        local = _local(path)
        if local is None:
            continue
        problems += _writable(key, path, local)
        problems += _apart_from_input(key, path, local, config.input.path)
    return problems


def _writable(key: str, path: str, local: str) -> list[str]:
    if os.path.isfile(local):
        return [f"{key}: {path!r} is a file; give a folder (it is created if missing)"]
    parent = os.path.abspath(local)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.isfile(parent):
        return [f"{key}: {path!r} is inside {parent!r}, which is a file; give a folder"]
    try:  # os.access says yes to root on a read-only mount: only a real write tells
        fd, probe = tempfile.mkstemp(prefix=".curate-write-test-", dir=parent)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        what = "cannot write to" if parent == os.path.abspath(local) else f"cannot create {path!r} in"
        return [f"{key}: {what} {parent!r}: {e.strerror or e}; choose a writable folder"]
    return []


def _apart_from_input(key: str, path: str, local: str, input_path: str) -> list[str]:
    source = _local(input_path)
    if source is None:
        return []
    a, b = os.path.realpath(local), os.path.realpath(source)
    fix = "choose a folder outside the input (e.g. beside it)"
    if a == b:
        return [
            f"{key}: {path!r} is the input folder (input.path); the dataset would be written into the source data; {fix}"
        ]
    if a.startswith(b.rstrip(os.sep) + os.sep):
        return [f"{key}: {path!r} is inside input.path {input_path!r}; the next run would read it as input; {fix}"]
    if b.startswith(a.rstrip(os.sep) + os.sep):
        return [
            f"{key}: {path!r} holds input.path {input_path!r}; the dataset would be written into the source data; {fix}"
        ]
    return []


def check_dependencies(config: CurateConfig) -> list[str]:
    """The packages the chosen executor needs (a stage's own are checked by its prepare function)."""
    from .executors import KINDS

    extra = KINDS.get(config.executor.kind).requires if config.executor.kind in KINDS else None
    if extra is not None and not module_available(extra[0]):
        module, name = extra
        return [
            f"executor.kind: {config.executor.kind} needs the {module!r} package, which is not installed: "
            f"pip install 'curate[{name}]'"
        ]
    return []


def module_available(name: str) -> bool:
    """Importable without importing it (an entry of None in sys.modules, a blocked import, counts as missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Report:
    """What a preflight that passed found worth saying (`validate` and `plan` print it; a run logs it)."""

    notes: list[str] = field(default_factory=list)
    column_types: ColumnTypes | None = None  # of output.metadata_columns


def preflight(config: CurateConfig, download: bool = True) -> Report:
    """Raise one ConfigError listing every problem found; else return what is worth saying.

    `validate`, `plan` and the start of `run` all call this, so they refuse the same configs.

    With `download` (the start of a run) hub references are fetched into the HF cache and the stage
    options point at the local files; without (validate, plan) the cache is looked at and the hub asked.
    """
    from .plan import stage_columns

    report = Report()
    problems = check_input(config, report.notes) + check_output(config) + check_dependencies(config)
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
    report.column_types = input_column_types(config.input, config.output.metadata_columns)
    report.notes += _column_notes(report.column_types)
    return report


def _column_notes(ct: ColumnTypes) -> list[str]:
    notes = []
    for name, t in ct.types.items():
        if t is None and name not in ("id", "text"):
            notes.append(
                f"output.metadata_columns: {name!r} is not a field of any input file (looked at the first "
                f"{TYPE_SAMPLE_RECORDS} records of each); it is written as an empty column"
            )
        elif ct.notes.get(name, "declared") != "declared":
            notes.append(f"output.metadata_columns: {name!r}: {ct.notes[name]}")
    return notes
