"""Every flag and sub-command of `curate` says what it does, and hints name commands that exist."""

from __future__ import annotations

import argparse
import re
import shutil

from curate_testing import REPO

from curate.pipeline.cli import build_parser


def _undocumented(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"{path} {a.dest}" for a in action._choices_actions if not a.help]
            for name, sub in action.choices.items():
                missing += _undocumented(sub, f"{path} {name}")
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_flag_and_sub_command_has_help() -> None:
    assert _undocumented(build_parser(), "curate") == []


def test_every_help_text_formats() -> None:
    """`%(default)s` and friends expand (a stray % would crash `--help` only when a user asks for it)."""

    def walk(parser: argparse.ArgumentParser) -> None:
        parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())


def test_hints_name_commands_that_exist() -> None:
    """huggingface_hub's CLI is `hf` now (`huggingface-cli` is deprecated); a hint must name what is installed."""
    sources = [p for d in ("core", "pipeline", "dedup", "filters", "refiners") for p in (REPO / d).rglob("*.py")]
    stale = [str(p.relative_to(REPO)) for p in sources if re.search(r"huggingface-cli", p.read_text())]
    assert stale == []
    hint_commands = {m for p in sources for m in re.findall(r"\((hf) download\b", p.read_text())}
    for command in hint_commands:
        assert shutil.which(command), f"hint names `{command}`, which is not installed"
