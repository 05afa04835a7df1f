"""Read a fastText model's labels from its file header, without loading its matrices.

The launcher of a run checks every configured model before any task starts (exists, is a fastText
model, has the configured label). Loading DCLM's 7 GB `fasttext-oh-eli5` just to list two labels
would take most of a minute and 7 GB of a login node's memory; its dictionary is a few MB at the
front of the file. The layout (fastText's `FastText::saveModel`): magic, version, 12 int32 args and
a double, then the dictionary (sizes, then each entry as a NUL-terminated word, an int64 count and
an int8 type, 1 = label), the prune index, then the input matrix (a flag byte for quantized, and
for a dense one int64 rows, int64 cols and the floats), which also tells whether the file is cut short.

`check_label` is the stages' launcher check (their `register_prepare` functions call it): it reads
each file once per preflight and reports through the `PreflightContext`.
"""

from __future__ import annotations

import os
import struct
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # reading a header needs none of the stage API
    from curate.core.stage_api import PreflightContext

FASTTEXT_MAGIC = 793712314
_ARGS = struct.Struct("<12id")
_DICT_HEAD = struct.Struct("<iiiqq")


class NotFastText(ValueError):
    pass


def read_labels(path: str) -> list[str]:
    """The labels of the fastText model at `path`, in file order; NotFastText when it is not one or is cut short."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or struct.unpack("<i", head[:4])[0] != FASTTEXT_MAGIC:
            raise NotFastText("not a fastText model (wrong magic number)")
        if len(f.read(_ARGS.size)) < _ARGS.size:
            raise NotFastText("file ends inside the header")
        raw = f.read(_DICT_HEAD.size)
        if len(raw) < _DICT_HEAD.size:
            raise NotFastText("file ends inside the dictionary")
        n_entries, _nwords, nlabels, _ntokens, prune = _DICT_HEAD.unpack(raw)
        labels: list[str] = []
        buf = b""
        pos = 0
        for _ in range(n_entries):
            while True:
                end = buf.find(b"\0", pos)
                if end != -1 and len(buf) >= end + 10:
                    break
                chunk = f.read(1 << 20)
                if not chunk:
                    raise NotFastText("file ends inside the dictionary")
                buf, pos = buf[pos:] + chunk, 0
            word = buf[pos:end]
            if buf[end + 9] == 1:
                labels.append(word.decode("utf-8", errors="replace"))
            pos = end + 10
        offset = f.tell() - (len(buf) - pos) + max(prune, 0) * 8
        if len(labels) != nlabels:
            raise NotFastText(f"dictionary says {nlabels} labels, found {len(labels)}")
        f.seek(offset)
        quant = f.read(1)
        if not quant:
            raise NotFastText("file ends before the input matrix")
        if quant == b"\0":
            dims = f.read(16)
            if len(dims) < 16:
                raise NotFastText("file ends inside the input matrix")
            rows, cols = struct.unpack("<qq", dims)
            if size < offset + 1 + 16 + rows * cols * 4:
                raise NotFastText(
                    f"file is cut short ({size:,} bytes, the input matrix alone needs {rows * cols * 4:,})"
                )
    return labels


# the labels read during one preflight, per file: a model named twice (by two stages, or as a quality
# and a category model) is read once and a broken one is reported once; freed with the preflight
_READ: weakref.WeakKeyDictionary[Any, dict[str, list[str] | None]] = weakref.WeakKeyDictionary()


def preflight_labels(pf: PreflightContext, path: str, key: str) -> list[str] | None:
    """The labels of the local model file `path`; None (after a problem under `key`) when it is no fastText model,
    None without a problem when `path` is a hub reference that was checked but not downloaded."""
    if not pf.is_local(path):
        return None
    seen = _READ.setdefault(pf, {})
    if path not in seen:
        try:
            seen[path] = read_labels(path)
        except (NotFastText, OSError) as e:
            seen[path] = None
            pf.problem(f"{path} cannot be loaded as a fastText model: {e}", key)
    return seen[path]


def check_label(pf: PreflightContext, path: str, label: str, key: str) -> None:
    """Report (under `key`) a model file that is no fastText model or has no label `label`."""
    labels = preflight_labels(pf, path, key)
    if labels is not None and label not in labels:
        pf.problem(
            f"fastText model {path} has labels {labels}; {label!r} is not one of them (set the model's label)", key
        )
