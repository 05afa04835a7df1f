"""Generated programs checkpointed inside a task, so that a killed task never pays for them twice.

After every generation call (one stage of one round of `batch_size` documents) the task's new
programs are written as one segment file, `RANK.SEQ.jsonl`, through a hidden `.partial` file renamed
into place: a segment is complete or absent, and a kill loses at most the call in flight. A rerun of
the task reads its segments and sends the model only the documents they do not answer.

Records are keyed by document id and a hash of the text: an id whose text changed is generated again.
The folder is a work folder of the run: kept while a run is incomplete, cleared with the job by a
resume whose configuration changed (stale programs are never reused), removed when the run completes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def doc_key(doc_id: str, text: str) -> str:
    h = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{doc_id}\x1f{h}"


class GenerationCheckpoint:
    """The programs of one task: `stage -> key -> output` (doc: one string; chunk: one per chunk)."""

    def __init__(self, folder: str, rank: int) -> None:
        self.folder = Path(folder)
        self.rank = rank
        self.done: dict[str, dict[str, object]] = {"doc": {}, "chunk": {}}
        self.seq = 0
        self._load()

    def _segments(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found = list(self.folder.glob(f"{self.rank:05d}.*.jsonl"))
        return sorted(found, key=lambda p: int(p.name.split(".")[1]))

    def _load(self) -> None:
        for seg in self._segments():
            self.seq = max(self.seq, int(seg.name.split(".")[1]) + 1)
            with seg.open(encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    self.done[r["stage"]][r["key"]] = r["out"]

    @property
    def restored(self) -> int:
        return sum(len(v) for v in self.done.values())

    def get(self, stage: str, key: str) -> object | None:
        return self.done[stage].get(key)

    def flush(self, stage: str, outputs: dict[str, object]) -> None:
        """Write these new outputs as one segment (atomic: the segment is complete or absent)."""
        if not outputs:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.rank:05d}.{self.seq:06d}.jsonl"
        tmp = self.folder / f".{name}.partial"
        with tmp.open("w", encoding="utf-8") as f:
            for key, out in outputs.items():
                f.write(
                    json.dumps({"stage": stage, "key": key, "out": out}) + "\n"
                )  # ASCII escapes: a lone surrogate survives
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / name)
        self.seq += 1
        self.done[stage].update(outputs)
