"""The backend of docs/extending/backend.md, run as written: registered by its decorator and used by
prox_refine through `backend: keep_all` in a real in-process run."""

from __future__ import annotations

import re
import sys
import types

from curate_testing import REPO


def test_docs_backend_runs_in_prox_refine() -> None:
    from curate.pipeline import run_stages

    (block,) = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "extending" / "backend.md").read_text(), flags=re.S)
    module = types.ModuleType("docs_keep_all_backend")
    sys.modules[module.__name__] = module
    exec(compile(block, "docs/extending/backend.md", "exec"), module.__dict__)
    text = "Home | About | Contact\nThe article itself has enough words to stay as it is.\nCopyright 2024"
    result = run_stages([text], [{"stage": "prox_refine", "backend": "keep_all"}])
    assert [d.metadata["prox_status"] for d in result.docs] == ["kept"]
    assert [d.text for d in result.docs] == [text]
    assert result.stage("prox_refine")["extra"]["gen/prompts"] == 2  # one doc prompt, one chunk prompt
