"""`curate diff` and `curate report`: look at what a run did, document by document and overall."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.core.errors import CurateError

DIFF_EPILOG = """examples:
  curate diff out/sample                                the first 20 documents, changed ones first
  curate diff configs/sample.yaml                       the same, found through the run's config
  curate diff out/sample --status edited --limit 5      the first 5 refined documents
  curate diff out/sample --id 'c4-00042'                one document
  curate diff out/sample --grep 'cookie' -i | less -R   documents mentioning cookies
  curate diff out/sample --stage exact_substring_dedup   documents that stage edited (or dropped)
  curate diff out/sample --sample 20 --seed 1            a reproducible random sample
  curate diff out/sample --html diff.html               a self-contained page for the browser
"""


def _quiet_broken_pipe(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`curate diff OUT | head -1`: when the reader of stdout goes away, stop and exit 0, like git does
    (Python ignores SIGPIPE, so the next write raises BrokenPipeError; rich turns that into exit 1)."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            rc = fn(args)
            sys.stdout.flush()
            return rc
        except BrokenPipeError:
            # what is still buffered would fail again when Python flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return run


def resolve_output(arg: str) -> str:
    """The output folder a user meant: the folder itself, the run's YAML config (its output.path), or a
    data/, rejected/ or rejected/STAGE/ folder inside an output (its output folder)."""
    if "://" in arg:
        return arg
    from .select import RUN_FILES

    p = Path(arg)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        from ..config import load_config

        out = load_config(p).output.path
        if not Path(out).is_dir():
            raise CurateError(
                f"{arg}: its output folder {out} does not exist (run `curate run {arg}` first, "
                f"or pass the folder a run with --output wrote)"
            )
        return out
    if p.is_dir():  # OUT/data, OUT/rejected, OUT/rejected/STAGE
        for up, name in ((p.parent, p.name), (p.parent.parent, p.parent.name)):
            if name in ("data", "rejected") and any((up / f).is_file() for f in RUN_FILES):
                return str(up)
    if p.suffix == ".parquet":
        raise CurateError(f"{arg}: pass the run's output folder (the one holding data/ and rejected/) or its config")
    return arg


@_quiet_broken_pipe
def cmd_diff(args: argparse.Namespace) -> int:
    from .select import Selection, count_documents, empty_note, select, select_changed_first

    args.output = resolve_output(args.output)

    limit, per_status = args.limit, args.per_status
    default_limit = limit is None and not (args.id or args.sample)
    if default_limit:
        if args.html:
            # a page shows every status: up to N of each unless the user narrowed the selection
            per_status = per_status or (None if (args.status or args.grep) else 200)
            limit = None if per_status else 1000
        else:
            limit = 20
    if limit is not None and limit < 1:
        limit = None  # --limit 0: everything
    sel = Selection.build(
        ids=args.id,
        status=args.status,
        grep=args.grep,
        ignore_case=args.ignore_case,
        limit=limit,
        sample=args.sample,
        seed=args.seed,
        per_status=per_status,
        stages=args.stage,
    )
    total = count_documents(args.output)
    if total == 0:
        # a run that dropped everything: not an error, and the reason is worth one line
        note = empty_note(args.output)
        if args.html:
            from .html import write_html

            write_html(args.output, [], args.html, selection_note=_describe(args, limit), empty=note)
            print(f"wrote {args.html}: {note}", file=sys.stderr)
        else:
            print(note)
        return 0
    # in the terminal, without a status, what the pipeline changed comes first (unchanged ones last)
    ranked = not args.html and limit is not None and not (args.status or args.id or args.sample)
    records = (select_changed_first if ranked else select)(args.output, sel)
    if args.html:
        from .html import write_html

        n = write_html(args.output, records, args.html, selection_note=_describe(args, limit))
        print(f"wrote {args.html} ({n} document(s))", file=sys.stderr)
        return 0 if n else 1
    from .terminal import render

    n = render(records, color=args.color, context=args.context, full=args.full, programs=not args.no_programs)
    sys.stdout.flush()
    if n == 0:
        print("no document matches the selection" + _edited_hint(args), file=sys.stderr)
        return 1
    if default_limit and n == limit and total > n:
        print(
            f"showing {n} of {total:,} documents, changed ones first (--limit 0: all; --status to choose)",
            file=sys.stderr,
        )
    return 0


def _edited_hint(args: argparse.Namespace) -> str:
    """`--status dropped:STAGE` of a stage that drops nothing but edits: say where its work is."""
    wanted = [
        w.strip().split(":", 1)[1] for s in args.status or () for w in s.split(",") if w.strip().startswith("dropped:")
    ]
    if not wanted:
        return ""
    from .select import edit_counts

    counts = edit_counts(args.output)
    hits = [f"{s} edited {counts[s]:,} (--stage {s})" for s in wanted if counts.get(s)]
    return ("; " + "; ".join(hits)) if hits else ""


def _describe(args: argparse.Namespace, limit: int | None) -> str:
    parts = []
    if args.id:
        parts.append("id " + ", ".join(args.id))
    if args.status:
        parts.append("status " + ",".join(args.status))
    if args.stage:
        parts.append("stage " + ",".join(args.stage))
    if args.grep:
        parts.append(f"grep /{args.grep}/" + ("i" if args.ignore_case else ""))
    if args.sample:
        parts.append(f"sample {args.sample} (seed {args.seed})")
    if limit:
        parts.append(f"at most {limit}")
    if args.per_status or (args.html and not (args.limit or args.id or args.sample or args.status or args.grep)):
        parts.append(f"at most {args.per_status or 200} per status")
    return "; ".join(parts) or "all documents"


@_quiet_broken_pipe
def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    args.output = resolve_output(args.output)
    path = args.html or f"{args.output.rstrip('/')}/report.html"
    write_report(args.output, path, bins=args.bins)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    from .statuses import STATUS_HELP

    sp = sub.add_parser(
        "diff",
        help="show what the pipeline did to each document (labelled before/after diffs)",
        description="Show each selected document of an output folder as a diff of its input text and its "
        "final text, each change labelled with the stage (and ProX program call) that made it.",
        epilog=DIFF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sp.add_argument(
        "output", help="a run's output folder (holds data/ and, with keep_rejected, rejected/), or its config"
    )
    sp.add_argument("--id", action="append", help="this document id (repeatable)")
    sp.add_argument("--status", action="append", help=STATUS_HELP)
    sp.add_argument(
        "--stage",
        action="append",
        help="documents this stage edited (its recorded edits) or dropped; repeatable or comma-separated",
    )
    sp.add_argument("--grep", help="documents whose text (before or after) matches this regular expression")
    sp.add_argument("-i", "--ignore-case", action="store_true", help="--grep ignores case")
    sp.add_argument("--limit", type=int, help="at most N documents (default 20 in the terminal; 0: all)")
    sp.add_argument(
        "--sample", type=int, metavar="N", help="a random sample of N matching documents (one pass, bounded memory)"
    )
    sp.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    sp.add_argument(
        "--per-status",
        type=int,
        metavar="N",
        help="at most N documents of each status (default with --html and no other selection: 200)",
    )
    sp.add_argument("--context", type=int, default=2, help="unchanged lines shown around each change (default 2)")
    sp.add_argument("--full", action="store_true", help="show every line, not only the changes and their context")
    sp.add_argument("--no-programs", action="store_true", help="do not print the model programs")
    sp.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour: auto (only on a terminal), always, never",
    )
    sp.add_argument("--html", metavar="FILE", help="write one self-contained HTML page instead of printing")
    sp.set_defaults(fn=cmd_diff)

    sp = sub.add_parser(
        "report",
        help="write an HTML run report: funnel, drop reasons, annotation histograms",
        description="Write a self-contained HTML report of a run from its stats.json, config and "
        "Parquet output: docs and chars kept per stage, drop reasons, a histogram of "
        "every numeric annotation with the config's thresholds, refinement statuses.",
    )
    sp.add_argument("output", help="a run's output folder, or its config")
    sp.add_argument("--html", metavar="FILE", help="where to write it (default OUTPUT/report.html)")
    sp.add_argument("--bins", type=int, default=40, help="histogram bins (default 40)")
    sp.set_defaults(fn=cmd_report)


__all__ = ["register", "CurateError"]
