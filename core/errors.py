"""Error types with messages meant for the person running the pipeline."""

from __future__ import annotations


class CurateError(Exception):
    """Base class: every curate error prints as a readable message, never a bare traceback."""


class ConfigError(CurateError):
    """A config file or option is wrong. The message names the key path, the bad value and the fix."""

    def __init__(self, problems: list[str] | str, source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        head = f"invalid config {source}" if source else "invalid config"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}:\n{body}")

    def __reduce__(self):  # survive pickling across worker processes
        return (ConfigError, (self.problems, self.source))


class InputError(CurateError):
    """A record of the input could not be used. Names the file and the record position."""

    def __init__(self, path: str, record: int | str | None, reason: str, detail: str = ""):
        self.path = path
        self.record = record
        self.reason = reason
        where = f"{path}" + (f", record {record}" if record is not None else "")
        self.detail = detail
        super().__init__(f"bad input in {where}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):  # survive pickling across worker processes
        return (InputError, (self.path, self.record, self.reason, self.detail))
