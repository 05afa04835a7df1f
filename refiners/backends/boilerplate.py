"""The `boilerplate` backend: a deterministic CPU "refiner" writing ProX programs for obvious boilerplate lines.

It reads the same prompts a model would (the numbered lines between `[doc]` and `[/doc]`, or the
raw document of a doc prompt) and answers in the same grammar, so the program applier, the columns
and `curate diff` see real edits on the bundled sample without a GPU or a model. It is deliberately
conservative: it only flags lines that are boilerplate on their own (cookie banners, navigation
menus, share / follow widgets, copyright lines, bare URLs and short link labels), merges runs
of them (blank lines in between included) into `remove_lines`, and rewrites leftover HTML
entities with `normalize`. It is not a quality model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from curate.core.options import StrictModel

from ..prompts import Prompt
from .base import Generation, register_backend

_COOKIE = re.compile(
    r"\b(we use cookies|(this|our) (web)?site uses cookies|uses cookies to|cookie (policy|settings|preferences|consent)|accept (all )?cookies)\b",
    re.I,
)
_SHARE = re.compile(
    r"^(share( this)?( (post|article|page|story|on \w+))?|tweet( this)?|pin it|email this|print( this)?( page| article)?|follow us( on \w+)?|like us on \w+|connect with us)(?=$|[\s:|»›\-])",
    re.I,
)
_COPYRIGHT = re.compile(r"^(©|\(c\) ?\d{4}|copyright\b)|\ball rights reserved\b", re.I)
_URL = re.compile(r"^(https?://|www\.)\S+$", re.I)
_LABELS = frozenset(
    """home menu search reply login register subscribe next previous top
skip to content|skip to main content|read more|continue reading|click here|back to top|log in|sign in|sign up
related posts|leave a comment|leave a reply|previous post|next post|older posts|newer posts|main menu|toggle navigation
comments|share|tweet|print|email|categories|tags|archives|recent posts|popular posts""".replace("\n", "|").split("|")
)
_LABEL_WORDS = {w for lab in _LABELS for w in [lab.strip()] if w}
_NAV_SEP = re.compile(r"\s*(?:\||»|•|·|›| / )\s*")
_ENTITIES = (("&nbsp;", " "), ("&amp;", "&"), ("&quot;", '"'), ("&#39;", "'"))
_NUMBERED = re.compile(r"^\[(\d+)\](.*)$")


def is_boilerplate(line: str) -> bool:
    s = line.strip()
    if not s:
        return False
    words = s.split()
    short = len(words) <= 30
    if short and (_COOKIE.search(s) or _COPYRIGHT.search(s)):
        return True
    if len(words) <= 8 and _SHARE.match(s):
        return True
    if len(words) <= 4 and _URL.match(s):
        return True
    label = re.sub(r"[^\w ]+", " ", s.lower()).strip()
    label = re.sub(r"\s+", " ", label)
    if len(words) <= 4 and label in _LABEL_WORDS:
        return True
    items = [x for x in _NAV_SEP.split(s) if x]
    if len(items) >= 4 and len(words) <= 30 and all(len(x.split()) <= 3 for x in items):
        return True
    return False


def chunk_program(numbered: list[tuple[int, str]]) -> str:
    calls: list[str] = []
    for src, dst in _ENTITIES:
        if any(src in text for _, text in numbered):
            calls.append(f'normalize(source_str="{src}", target_str="{dst}")')
    run: list[int] = []
    pending_blank: list[int] = []
    for i, text in numbered:
        if is_boilerplate(text):
            run.extend(pending_blank if run else [])
            run.append(i)
            pending_blank = []
        elif not text.strip() and run:
            pending_blank.append(i)
        else:
            if run:
                calls.append(f"remove_lines(line_start={run[0]}, line_end={run[-1]})")
            run, pending_blank = [], []
    if run:
        calls.append(f"remove_lines(line_start={run[0]}, line_end={run[-1]})")
    return "\n".join(calls) if calls else "keep_chunk()"


def doc_program(text: str) -> str:
    lines = [x for x in text.split("\n") if x.strip()]
    if len(lines) >= 3 and sum(map(is_boilerplate, lines)) >= 0.6 * len(lines):
        return "drop_doc()"
    return "keep_doc()"


def _user(prompt: str) -> str:
    start = prompt.index("<</SYS>>\n\n") + len("<</SYS>>\n\n")
    return prompt[start : prompt.rindex(" [/INST]")]


def numbered_lines(prompt_text: str) -> list[tuple[int, str]]:
    body = _user(prompt_text)
    body = body[len("[doc]\n") : -len("\n[/doc]")]
    out = []
    for line in body.split("\n"):
        m = _NUMBERED.match(line)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out


class BoilerplateOptions(StrictModel):
    """No options: the generator has no model and no knobs."""


@register_backend("boilerplate", BoilerplateOptions)
class BoilerplateBackend:
    """Fixed patterns for obvious boilerplate lines (CPU, no model)."""

    needs_model = False  # reads the prompt text; never loads a model or its tokenizer

    def __init__(self, model: str | None = None, options: BoilerplateOptions | None = None) -> None:
        pass

    def generate(self, prompts: Sequence[Prompt], max_tokens: int) -> list[Generation]:
        out = []
        for p in prompts:
            text = doc_program(_user(p.text)) if p.kind == "doc" else chunk_program(numbered_lines(p.text))
            out.append(Generation(text))
        return out
