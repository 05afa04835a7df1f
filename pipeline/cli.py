"""The `curate` command line."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from curate.core.errors import CurateError

# modules adding sub-commands of their own: each has `register(subparsers)`
_COMMAND_MODULES = (
    "curate.pipeline.commands.train_classifier",
    "curate.pipeline.inspect.cli",
    "curate.pipeline.commands.refiner",
    "curate.pipeline.commands.tokenize",
    "curate.pipeline.commands.subset",
    "curate.pipeline.commands.preview",
)

EPILOG = """examples:
  curate run configs/sample.yaml                 run the bundled sample locally
  curate plan configs/fineweb.yaml               show jobs, tasks and input files, run nothing
  curate run configs/sample.yaml --limit 100 --output /tmp/try
  curate stages                                  list every stage and its options
"""


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {}
    for item in getattr(args, "set", None) or []:
        if "=" not in item:
            raise CurateError(f"--set expects KEY=VALUE (e.g. executor.tasks=4), got {item!r}")
        k, v = item.split("=", 1)
        o[k] = yaml.safe_load(v)
    if getattr(args, "output", None):
        o["output.path"] = args.output
    if getattr(args, "executor", None):
        o["executor.kind"] = args.executor
    # `is not None`: --tasks 0 must reach the config check and be refused, not be taken for "not given"
    if getattr(args, "tasks", None) is not None:
        o["executor.tasks"] = args.tasks
    if getattr(args, "workers", None) is not None:
        o["executor.workers"] = args.workers
    if getattr(args, "limit", None) is not None:
        o["input.limit"] = args.limit
    return o


def _load(args: argparse.Namespace) -> Any:
    from .config import load_config

    return load_config(args.config, _overrides(args))


def cmd_validate(args: argparse.Namespace) -> int:
    from .preflight import preflight

    cfg = _load(args)
    report = preflight(cfg, download=False)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{args.config}: valid ({len(cfg.entries)} stages: {', '.join(e.label for e in cfg.entries) or 'none'})")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .plan import build_plan, describe
    from .preflight import preflight
    from .readers import is_remote, list_input_files
    from .resume import decide

    cfg = _load(args)
    notes = [] if args.no_checks else preflight(cfg, download=False).notes
    files = None if is_remote(cfg.input.path) or args.no_checks else list_input_files(cfg.input)
    plan = build_plan(cfg, check_inputs=False)
    d = describe(plan, files)
    d["column_types"] = {f.name: str(f.type) for f in plan.schema}
    d["notes"] = notes
    decision = decide(plan)
    d["resume"] = {
        "keep": decision.keep,
        "redo": decision.redo,
        "reason": decision.reason,
        "finished": decision.finished,
    }
    from .preview.saved import preview_lines, saved_preview

    preview = saved_preview(plan.work_dir, plan.fingerprint["fingerprint"])
    d["preview"] = preview
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    c = Console()
    c.print(
        f"[bold]{d['name']}[/bold]  executor: [cyan]{d['executor']}[/cyan]  output: {d['output']}  "
        f"work: {d['work_dir']}",
        highlight=False,
    )
    if files is None:
        c.print(f"input: {cfg.input.format} at {cfg.input.path} (remote: files are listed when the run starts)")
    else:
        c.print(f"input: {cfg.input.format}, {len(files)} file(s) under {cfg.input.path}")
        for f in files[:10]:
            c.print(f"  {f}")
        if len(files) > 10:
            c.print(f"  ... and {len(files) - 10} more")
    t = Table(title="jobs (each depends on the one before)", title_justify="left")
    for col in ("#", "job", "tasks", "resources", "steps"):
        t.add_column(col)
    for i, j in enumerate(d["jobs"]):
        res = ", ".join(f"{k}={v}" for k, v in (j["resources"] or {}).items()) or "default"
        t.add_row(str(i), j["name"], str(j["tasks"]), res, " → ".join(j["steps"]))
    c.print(t)
    c.print(
        "output columns: " + ", ".join(f"{n} ({t})" for n, t in d["column_types"].items()),
        highlight=False,
        soft_wrap=True,
    )
    for note in notes:
        c.print(f"note: {note}", highlight=False, soft_wrap=True)
    said = decision.describe(plan)
    if said:
        c.print(said, highlight=False)
    elif decision.keep and not decision.redo:
        c.print(f"resume: the finished tasks of jobs 0-{len(plan.jobs) - 1} are kept", highlight=False)
    for line in preview_lines(preview) if preview else []:
        c.print(line, highlight=False, soft_wrap=True)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .run import run_config
    from .stats import check_conservation, print_summary

    cfg = _load(args)
    stats = run_config(cfg, progress=not args.no_progress, wait=args.wait)
    if stats.get("nothing_to_do"):
        print_summary(stats)
        return 0 if stats.get("complete") else 1
    if stats.get("submitted"):  # handed to a scheduler: its last job writes stats.json
        print(f"{stats['submitted']} (or run `curate stats {args.config}`)", file=sys.stderr)
        return 0
    print_summary(stats)
    print(
        f"output: {cfg.output.path}/data   stats: {cfg.output.path}/stats.json   wall: {stats['wall_s']} s",
        file=sys.stderr,
    )
    bad = check_conservation(stats["stages"]) + stats.get("flow_errors", [])
    if bad:
        print("documents unaccounted for:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    return 0 if stats["complete"] else 1


def cmd_stats(args: argparse.Namespace) -> int:
    from .plan import build_plan
    from .stats import collect_stats, print_summary, write_stats

    given = Path(args.config)
    if not given.exists() and given.suffix not in (".yaml", ".yml", ".json"):
        raise CurateError(
            f"{given}: no such folder or file; pass a run's output folder, its stats.json or the run's config"
        )
    saved = given / "stats.json" if given.is_dir() else given
    if saved.suffix == ".json":  # an output folder or its stats.json: print what the run wrote
        if not saved.is_file():
            raise CurateError(
                f"{saved}: no stats.json here (no run has finished a job into this folder); pass the run's "
                "config, its output folder or its stats.json"
            )
        stats = json.loads(saved.read_text(encoding="utf-8"))
        print_summary(stats)
        return 0 if stats.get("complete") else 1
    cfg = _load(args)
    plan = build_plan(cfg, check_inputs=False)
    stats = collect_stats(plan)
    if stats["complete"]:  # e.g. the Slurm stats job: finish the run (card, run record, work folder)
        from .executors.slurm import submitted_wall
        from .run import finish_run

        finish_run(plan, stats, submitted_wall(plan))
    else:
        write_stats(plan, stats)
    print_summary(stats)
    return 0 if stats["complete"] else 1


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove a run's work folder (handoffs, scratch data, logs, completion markers): the dataset stays."""
    from .layout import RUN_FILE, default_work_dir, remove_work_dir
    from .plan import build_plan

    given = Path(args.config)
    if given.is_dir():
        record = given / RUN_FILE
        work = json.loads(record.read_text()).get("work_dir") if record.is_file() else None
        work = work or default_work_dir(str(given))
    else:
        work = build_plan(_load(args), check_inputs=False).work_dir
    if remove_work_dir(work):
        print(f"removed {work} (a rerun of this config now starts from the dataset's record, or from scratch)")
    else:
        print(f"nothing to remove: {work} does not exist")
    return 0


def _default_text(value: Any) -> str:
    """A default as it would be written in the YAML config (pydantic models as plain mappings)."""
    from pydantic import BaseModel

    def plain(v: Any) -> Any:
        if isinstance(v, BaseModel):
            return {k: plain(x) for k, x in v.model_dump(exclude_defaults=True).items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    if value is None:
        return "unset"
    text = yaml.safe_dump(plain(value), default_flow_style=True, width=10**6, sort_keys=False).strip()
    return text.removesuffix("...").strip()  # YAML closes a bare scalar document with "..."


def _stage_columns(spec: Any) -> list[Any]:
    """Declared columns, plus those that depend on options, as the defaults make them."""
    try:
        return spec.columns(spec.options())
    except Exception:  # options without defaults for every key: columns depend on what the config says
        return list(spec.static_columns)


def cmd_stages(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from curate.core.stage_api import all_stages

    if args.plugin:
        from curate.core.plugins import load_plugins

        load_plugins(args.plugin, "--plugin")
    c = Console()
    if not c.is_terminal:  # pipes and files: no folding at 80 columns
        c.width = max(c.width, 160)
    found = False
    for spec in all_stages():
        if args.name and spec.name != args.name:
            continue
        found = True
        c.print(f"[bold cyan]{spec.name}[/bold cyan]  {spec.summary}", highlight=False)
        t = Table.grid(padding=(0, 2))
        t.add_column(no_wrap=True, style="bold")
        t.add_column()
        # options models may accept keys beyond their fields (prox_refine: its backend's), each with a note
        fields = (
            spec.options.option_fields()
            if hasattr(spec.options, "option_fields")
            else [(k, f, None) for k, f in spec.options.model_fields.items()]
        )
        for fname, f, note in fields:
            default = (
                "[red]required[/red]"
                if f.is_required()
                else f"[dim](default: {escape(_default_text(f.get_default(call_default_factory=True)))})[/dim]"
            )
            where = f"[magenta]{escape(note)}:[/magenta] " if note else ""
            t.add_row(f"  {fname}", f"{where}{escape(f.description or '')} {default}")
        for col in _stage_columns(spec):
            t.add_row(f"  → {col.name}", f"[green]column[/green] ({col.type}): {escape(col.description)}")
        c.print(t, highlight=False)
        c.print()
    if args.name and not found:
        from difflib import get_close_matches

        names = [s.name for s in all_stages()]
        hint = get_close_matches(args.name, names, n=1)
        raise CurateError(
            f"no stage {args.name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; stages: {', '.join(names)}"
        )
    return 0


def add_run_flags(sp: argparse.ArgumentParser) -> None:
    """The overrides `run` takes, given to `validate` and `plan` too: they check and show the exact command
    that will run (`--set` comes with every config command)."""
    sp.add_argument("--limit", type=int, help="read at most N records per task (quick trials)")
    sp.add_argument("--output", help="override output.path")
    sp.add_argument("--executor", metavar="KIND", help="override executor.kind: local | slurm | ray")
    sp.add_argument("--tasks", type=int, help="override executor.tasks")
    sp.add_argument("--workers", type=int, help="override executor.workers")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="curate",
        description="LLM-pretraining data curation: read web shards, dedup, filter with the GneissWeb ensemble, "
        "refine with ProX, write Parquet. Runs locally, on Slurm or on Ray (chosen in the config).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(
        name: str,
        help: str,
        fn: Callable[[argparse.Namespace], int],
        config_help: str = "YAML config file (see docs/configuration.md)",
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("config", help=config_help)
        sp.add_argument(
            "--set",
            action="append",
            metavar="KEY=VALUE",
            help="override a config key, e.g. --set executor.tasks=8 (repeatable)",
        )
        sp.set_defaults(fn=fn)
        return sp

    sp = with_config("validate", "check a config file and report every problem with its key", cmd_validate)
    add_run_flags(sp)
    sp = with_config(
        "plan", "show the jobs, tasks, resources and input files a config compiles to (runs nothing)", cmd_plan
    )
    add_run_flags(sp)
    sp.add_argument("--json", action="store_true", help="print the plan as JSON")
    sp.add_argument(
        "--no-checks",
        action="store_true",
        help="show the jobs without checking input, models and tokenizers (e.g. a cluster config, offline)",
    )
    sp = with_config("run", "run a config to completion (local, Ray) or submit it (Slurm)", cmd_run)
    add_run_flags(sp)
    sp.add_argument("--no-progress", action="store_true", help="no progress display")
    sp.add_argument(
        "--wait", action="store_true", help="slurm: wait until every submitted job has ended, then print the summary"
    )
    with_config(
        "stats",
        "merge per-task stats of a (finished or running) run and print the summary",
        cmd_stats,
        config_help="YAML config file (merges the task stats again), or a run's output folder or its "
        "stats.json (prints it)",
    )
    sp = sub.add_parser(
        "clean",
        help="remove a run's work folder (handoffs, scratch data, logs, resume markers); the dataset in the output folder stays",
        description="remove a run's work folder",
    )
    sp.add_argument("config", help="the run's YAML config, or its output folder")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (as for run)")
    sp.set_defaults(fn=cmd_clean)
    sp = sub.add_parser(
        "stages",
        help="list the stages usable in a config, with their options and output columns",
        description="List every registered stage with its options (type, default, meaning) and the output columns\n"
        "it writes; docs/reference/stages.md is generated from the same models.\n\n"
        "examples:\n"
        "  curate stages                                 # every stage\n"
        "  curate stages minhash_dedup                   # one stage\n"
        "  curate stages punctuation_filter --plugin punctuation.py   # a stage of your own",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument("name", nargs="?", help="only this stage")
    sp.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE_OR_FILE",
        help="also load the stages of this plugin (a module name or a .py file; repeatable)",
    )
    sp.set_defaults(fn=cmd_stages)

    for mod in _COMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
            continue
        m.register(sub)
    if "preview" in sub.choices:  # run's flags, and the overrides they make, given here (commands never import cli)
        add_run_flags(sub.choices["preview"])
        sub.choices["preview"].set_defaults(overrides=_overrides)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    from loguru import logger

    from .logs import console_sink

    logger.remove()  # the CLI is curate's own process: its console is curate's
    console_sink()
    try:
        return args.fn(args)
    except CurateError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished tasks are skipped)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
