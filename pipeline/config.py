"""The YAML config: schema, `${ENV}` interpolation and error messages that name the key and the fix.

A config has fixed top-level sections (input, output, executor) and a list of `stages`, each
looked up by name in the stage registry and validated against that stage's own option model.
`input:` is validated likewise against the options model of its `format` (the reader registry).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from curate.core.errors import ConfigError
from curate.core.options import (
    LocalPath,
    ModelRef,
    StrictModel,
    format_validation_error,
    is_url,
    resolve_path,
    resolve_paths,
)

from .readers import InputConfig, parse_type, validate_input
from .stage_entries import StageEntry, validate_stages


class TokenizeConfig(StrictModel):
    """`output.tokenize`: token shards a trainer reads directly, written from data/ (pipeline/tokenize_output.py)."""

    tokenizer: ModelRef = Field(
        description="tokenizer.json, a folder holding one, or a hub id (owner/name), resolved before the run"
    )
    format: Literal["megatron", "datatrove"] = Field(
        "megatron",
        description="megatron: .bin/.idx per task (megatron-core's IndexedDataset); datatrove: .ds/.ds.index "
        "per task merged into tokens/datatrove/ (datatrove's DatatroveFolderDataset)",
    )
    eos: str | None = Field(
        "<|endoftext|>",
        description="token (its text, e.g. </s>) appended after every document; null: none, the tokenizer's own "
        "post-processor applies (e.g. a BOS)",
    )
    shuffle: bool = Field(
        False,
        description="datatrove format: shuffle documents within each task and again when merging (its reader "
        "reads sequentially); megatron: refused, Megatron's GPTDataset shuffles at train time",
    )
    seed: int = Field(0, description="seed of the shuffles")

    @model_validator(mode="after")
    def _shuffle_needs_datatrove(self) -> TokenizeConfig:
        if self.shuffle and self.format == "megatron":
            raise ValueError(
                "shuffle applies to format: datatrove (Megatron's GPTDataset shuffles samples at train time); "
                "remove shuffle or set format: datatrove"
            )
        return self


class OutputConfig(StrictModel):
    path: LocalPath = Field(description="output folder (local or fsspec URL)")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet codec")
    keep_rejected: bool = Field(False, description="also write dropped documents, with reason, under rejected/")
    metadata_columns: list[str] | dict[str, str | None] = Field(
        default_factory=list,
        description="input fields copied to output columns (e.g. [url, dump]), with the types read from every "
        "input file, or declared: {score: float64, url: string} (an Arrow type name; null: read from the input)",
    )
    rows_per_group: int = Field(1000, gt=0, description="Parquet row-group size")
    work_dir: LocalPath | None = Field(
        None,
        description="handoffs between jobs, stages' scratch data, completion markers and logs, kept for resume "
        "(default: OUTPUT.work, beside the dataset, never inside it)",
    )
    keep_work: bool = Field(
        True,
        description="keep the work folder after a successful run (resume, logs); "
        "false removes it at the end (`curate clean` does it later)",
    )
    record_edits: bool = Field(
        True,
        description="stages that change the text record each change in the edits column (`curate diff`); "
        "false turns every stage's record_edits off",
    )
    tokenize: TokenizeConfig | None = Field(
        None, description="also write token shards from data/ under OUTPUT/tokens/FORMAT/ (a job after the writer)"
    )

    @field_validator("metadata_columns")
    @classmethod
    def _declared_types_parse(cls, v: list[str] | dict[str, str | None]) -> list[str] | dict[str, str | None]:
        if isinstance(v, dict):
            for name, text in v.items():
                if text is not None:
                    try:
                        parse_type(text)
                    except ValueError as e:
                        raise PydanticCustomError(
                            "column_type", "{name}: {why}", {"name": name, "why": str(e)}
                        ) from None
        return v


class SlurmConfig(StrictModel):
    partition: str = Field("cpu", description="partition for CPU jobs")
    time: str = Field("24:00:00", description="time limit per array task")
    cpus_per_task: int = Field(1, ge=1, description="CPUs per array task (--cpus-per-task)")
    mem_per_cpu_gb: float = Field(2, gt=0, description="memory per CPU in GB (sent as whole megabytes: --mem-per-cpu)")
    qos: str | None = Field(None, description="QOS name (omit to use the cluster default)")
    job_name: str = Field("curate", description="prefix of every job name")
    venv_path: LocalPath | None = Field(None, description="virtualenv activated in each job")
    env_command: str | None = Field(None, description="shell command run before each job")
    sbatch_args: dict[str, str] = Field(default_factory=dict, description="extra #SBATCH options")
    max_array_size: int = Field(
        1001, ge=1, description="most array tasks per job (the cluster's MaxArraySize); more tasks go in several"
    )


class RayConfig(StrictModel):
    address: str | None = Field(None, description="ray cluster address; None starts/attaches a local one")
    cpus_per_task: int = Field(1, ge=1, description="CPUs reserved per Ray task")
    mem_per_cpu_gb: float = Field(2, gt=0, description="memory per CPU in GB, reserved per Ray task")


def executor_kinds() -> list[str]:
    """The registered executor kinds (pipeline/executors/, one module each; imported by name: that package
    builds on the config)."""
    return importlib.import_module("curate.pipeline.executors").KINDS.names()


class ExecutorConfig(StrictModel):
    kind: str = Field("local", description="where tasks run: a registered executor kind (local, slurm, ray)")
    tasks: int = Field(1, ge=1, description="number of tasks (input files are split between them)")
    workers: int = Field(-1, description="tasks running at once (-1: all)")
    logging_dir: LocalPath | None = Field(
        None, description="logs, completion markers and per-task stats (default: WORK/logs)"
    )
    skip_completed: bool = Field(True, description="on rerun, skip tasks that already completed")
    stall_notice_s: float = Field(
        900,
        ge=0,
        description="when no task has finished for this long, say which tasks the run waits for (0: never)",
    )
    slurm: SlurmConfig = Field(default_factory=SlurmConfig, description="kind: slurm only: sbatch settings")
    ray: RayConfig = Field(default_factory=RayConfig, description="kind: ray only: the cluster and per-task resources")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        names = executor_kinds()
        if v not in names:
            allowed = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": allowed})
        return v

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise PydanticCustomError(
                "workers", "give -1 (all tasks at once) or N >= 1 tasks running at once (--workers N)"
            )
        return v

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            raise PydanticCustomError("tasks", "give N >= 1 tasks (--tasks N); the input files are split between them")
        return v


class CurateConfig(StrictModel):
    name: str = Field("curate", description="run name (used in job names and the report)")
    # the options model of input.format (a subclass of InputConfig): see readers.validate_input
    input: SerializeAsAny[InputConfig]
    output: OutputConfig
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    on_error: Literal["skip", "fail"] = Field(
        "skip", description="bad input records: skip (count and log file + record) or fail (stop with that message)"
    )
    on_stage_error: Literal["fail", "skip"] = Field(
        "fail",
        description="a stage raises on a document: fail the task (fix, then rerun) or skip (drop the document as "
        "stage_error/<stage>, log the first 20 per task; stages that must see every document, such as dedup, "
        "always fail)",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="modules or .py files whose import registers more stages (relative to the config file)",
    )
    stages: list[dict[str, Any]] = Field(default_factory=list, description="the stages, in order")

    # filled by load_config after each stage entry is validated against the registry
    _entries: list[StageEntry] = []
    _source: str | None = None

    @property
    def entries(self) -> list[StageEntry]:
        return self._entries

    @field_validator("input", mode="before")
    @classmethod
    def _input_of_its_format(cls, v: Any) -> Any:
        return validate_input(v) if isinstance(v, dict) else v


# ---------------------------------------------------------------------------- interpolation

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str, problems: list[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            problems.append(
                f"{path}: environment variable ${{{name}}} is not set (export {name}=... or write ${{{name}:-default}})"
            )
            return m.group(0)

        return _ENV.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------------------- loading


def parse_config(raw: dict[str, Any], source: str | None = None, base_dir: Path | None = None) -> CurateConfig:
    """Validate a config dict (already loaded from YAML) and every stage entry in it.

    With `base_dir`, relative paths (input, output, models, tokenizers) resolve against it.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(raw).__name__}", source)
    problems: list[str] = []
    raw = _interpolate(raw, "", problems)
    if problems:
        raise ConfigError(problems, source)
    raw = _load_plugins(raw, source, base_dir)  # first: a plugin may register a stage or an input format
    raw, problems = _input_section(raw)
    try:
        cfg = CurateConfig.model_validate(raw)
    except ValidationError as e:
        # the stages are checked too: a wrong top-level key must not hide every stage error until it is fixed
        problems += format_validation_error(e, CurateConfig) + _stage_problems(raw.get("stages"), base_dir)
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems + _stage_problems(cfg.stages, base_dir), source)
    try:
        entries = validate_stages(cfg.stages, base_dir)
    except ConfigError as e:
        raise ConfigError(e.problems, source) from None
    if base_dir is not None:
        resolve_paths(cfg, base_dir)
    if not cfg.output.record_edits:
        _no_edit_records(entries)
    cfg._entries = entries
    return cfg


def _no_edit_records(entries: list[StageEntry]) -> None:
    """`output.record_edits: false` wins over every stage's own `record_edits` (and its fingerprint says so)."""
    for e in entries:
        if "record_edits" in type(e.options).model_fields:
            e.options.record_edits = False
            e.raw = {**e.raw, "record_edits": False}


def _stage_problems(stages: Any, base_dir: Path | None) -> list[str]:
    """The stage errors of a config whose other sections are wrong (none when `stages` is no list of mappings:
    the schema reports that)."""
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        return []
    try:
        validate_stages(stages, base_dir)
    except ConfigError as e:
        return e.problems
    return []


def _load_plugins(raw: dict[str, Any], source: str | None, base_dir: Path | None) -> dict[str, Any]:
    """Import the `plugins:` of a config (file plugins resolved against its folder); a malformed list is
    left for the schema to report."""
    plugins = raw.get("plugins")
    if not plugins or not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        return raw
    from curate.core.plugins import load_plugins

    if base_dir is not None:
        plugins = [resolve_path(p, "ref", base_dir) if p.endswith(".py") else p for p in plugins]
    try:
        load_plugins(plugins)
    except ConfigError as e:
        raise ConfigError(e.problems, source) from None
    return {**raw, "plugins": plugins}


def _input_section(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`input:` validated against the options model of its format first, so that its messages name that
    format's keys; a bad section is replaced by a blank one, so the other sections are still checked."""
    section = raw.get("input")
    if not isinstance(section, dict):
        return raw, []  # missing or not a mapping: the schema says so
    try:
        return {**raw, "input": validate_input(section)}, []
    except ConfigError as e:
        return {**raw, "input": InputConfig.model_construct()}, e.problems  # type: ignore[call-arg]


def _apply_override(raw: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    """Set `a.b.c` in the raw config; a part after a list is an index (`stages.0`) or a stage's label."""
    node: Any = raw
    *parents, leaf = dotted.split(".")
    for i, part in enumerate(parents + [leaf]):
        last = i == len(parents)
        where = ".".join((parents + [leaf])[: i + 1])
        if isinstance(node, list):
            index = _list_index(node, part, where)
            if last:
                node[index] = value
                return
            node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(
                f"--set {dotted}: {where.rpartition('.')[0]} is a {type(node).__name__}, not a section", source
            )
        if last:
            node[part] = value
            return
        node = node.setdefault(part, {})


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise ConfigError(f"--set {where}: there are {len(items)} entries (0..{len(items) - 1})")
    names = [(it.get("label") or it.get("stage")) if isinstance(it, dict) else None for it in items]
    matches = [k for k, n in enumerate(names) if n == part]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(str(n) for n in names if n)
    raise ConfigError(
        f"--set {where}: no single stage labelled {part!r}; use an index (0..{len(items) - 1}) or one of: {known}"
    )


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CurateConfig:
    """Read a YAML config, apply dotted-key overrides (e.g. {"executor.kind": "local"}) and validate it.

    Relative paths in the file resolve against the file's folder; `overrides` are values from the
    command line, so their relative paths resolve against the current directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where}: not valid YAML: {what}", str(path)) from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of sections, got {type(raw).__name__}", str(path))
    for dotted, value in (overrides or {}).items():
        if dotted in _CWD_PATH_KEYS and isinstance(value, str) and not is_url(value):
            value = os.path.abspath(os.path.expanduser(value))
        _apply_override(raw, dotted, value, str(path))
    cfg = parse_config(raw, str(path), base_dir=path.resolve().parent)
    cfg._source = str(path)
    return cfg


# overrides given on the command line whose relative paths mean "from here", not "from the config"
_CWD_PATH_KEYS = {"input.path", "output.path", "output.work_dir", "executor.logging_dir"}
