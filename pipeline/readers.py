"""Input: datatrove's jsonl / parquet / WARC readers with accounting and clear bad-input handling.

datatrove's readers skip broken records with a warning and drop empty ones silently; ours count
every input record and either drop it with a reason (`on_error: skip`, the default; the file and
record are logged) or stop with an `InputError` naming them (`on_error: fail`). Each document
carries `source_file` and `source_record` (its 0-based position in that file).
"""

from __future__ import annotations

import io
import zlib
from typing import Any, Iterator

import fsspec
from datatrove.data import Document
from datatrove.pipeline.readers import JsonlReader, ParquetReader, WarcReader

from .config import InputConfig
from .errors import ConfigError
from .steps import Accounted

SOURCE_FILE = "source_file"
SOURCE_RECORD = "source_record"
_MISSING = object()


class _Source(Accounted):
    """Shared record -> Document logic of the three readers."""

    type = "curate-reader"
    max_doc_chars: int = 50_000_000
    # our own per-task limit: datatrove's stops *after* reading one record more than it yields,
    # which would count a record in that never comes out
    doc_limit: int = -1

    def _limit_reached(self) -> bool:
        return self.doc_limit != -1 and self._counts.docs_out_hint >= self.doc_limit

    def _yielded(self) -> None:
        self._counts.docs_out_hint += 1

    def _where(self, path: str) -> str:
        """The full path of an input file, for messages (the reader works with paths relative to its folder)."""
        try:
            return self.data_folder.resolve_paths(path)
        except Exception:  # pragma: no cover - resolve_paths only fails on exotic filesystems
            return path

    def _document(self, data: Any, path: str, record: int) -> Document | None:
        if not isinstance(data, dict):
            self.bad_record(self._where(path), record, "not_an_object", f"expected a JSON object, got {type(data).__name__}")
            return None
        text = data.pop(self.text_key, _MISSING)
        if text is _MISSING:
            keys = ", ".join(list(data)[:10])
            self.bad_record(self._where(path), record, "missing_text", f"no field {self.text_key!r}; fields are: {keys}")
            return None
        if text is None:
            self.bad_record(self._where(path), record, "null_text", f"field {self.text_key!r} is null")
            return None
        if not isinstance(text, str):
            self.bad_record(self._where(path), record, "text_not_string", f"field {self.text_key!r} is a {type(text).__name__}")
            return None
        self._counts.chars_in += len(text)
        if "\x00" in text:
            # NUL bytes break C-string based tools (fastText) and never carry meaning in web text
            text = text.replace("\x00", "")
            self.stat_update("nul_bytes_removed")
        full_path = self.data_folder.resolve_paths(path)
        doc_id = data.pop(self.id_key, None)
        metadata = data.pop("metadata", None)
        meta = dict(metadata) if isinstance(metadata, dict) else {}
        meta.update(data)
        meta[SOURCE_FILE] = full_path
        meta[SOURCE_RECORD] = record
        doc = Document(text=text, id=str(doc_id) if doc_id is not None else f"{path}/{record}", metadata=meta)
        if not text.strip():
            self.drop(doc, "empty_text")
            return None
        if len(text) > self.max_doc_chars:
            self.drop(doc, "too_long")
            return None
        return doc

    # datatrove's base class counts docs per file in `documents`; keep its stats and add ours
    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document | None:
        return self._document(data, source_file, int(id_in_file))


class JsonlSource(_Source, JsonlReader):
    name = "read jsonl"

    def read_file(self, filepath: str) -> Iterator[Document]:
        import orjson

        record = -1
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as raw:
                # zstd's reader has no line iteration of its own; buffering gives it (and speeds up gzip)
                f = io.BufferedReader(raw, 1 << 20) if not hasattr(raw, "peek") else raw
                for record, line in enumerate(f):
                    if self._limit_reached():
                        return
                    self.record_in()
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError as e:
                        self.bad_record(self._where(filepath), record, "invalid_utf8", f"byte {e.start}: {e.reason}")
                        continue
                    if not line.strip():
                        # harmless (an editor's trailing empty line): counted, never fatal, not logged
                        self._counts.dropped["blank_line"] += 1
                        continue
                    try:
                        data = orjson.loads(line)
                    except orjson.JSONDecodeError as e:
                        self.bad_record(self._where(filepath), record, "bad_json", str(e))
                        continue
                    doc = self._document(data, filepath, record)
                    if doc is not None:
                        self._yielded()
                        yield doc
        except (EOFError, zlib.error, OSError) as e:
            # a truncated or corrupt compressed file: what was read is kept, the rest is one drop
            self.record_in()
            self.bad_record(self._where(filepath), record + 1, "truncated_file", f"{type(e).__name__}: {e}")


class ParquetSource(_Source, ParquetReader):
    name = "read parquet"

    def read_file(self, filepath: str) -> Iterator[Document]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        record = -1
        try:
            with self.data_folder.open(filepath, "rb") as f, pq.ParquetFile(f) as pqf:
                for batch in pqf.iter_batches(batch_size=self.batch_size):
                    for row in batch.to_pylist():
                        if self._limit_reached():
                            return
                        record += 1
                        self.record_in()
                        doc = self._document(row, filepath, record)
                        if doc is not None:
                            self._yielded()
                            yield doc
        except (pa.ArrowException, OSError) as e:
            self.record_in()
            self.bad_record(self._where(filepath), record + 1, "corrupt_file", f"{type(e).__name__}: {e}")


_HTML_TYPES = ("text/html", "application/xhtml+xml")


def _mime(value: str | None) -> str | None:
    """`text/html; charset=x` -> `text/html`; an empty header (ClueWeb09 writes one) -> None."""
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _charset(value: str | None) -> str | None:
    for part in (value or "").split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            return v.strip().strip("\"'")
    return None


def warc_record_payload(rec: Any) -> tuple[dict | None, str]:
    """A response / conversion record -> ({text, id, url, date}, "") or (None, why it is not a document).

    Like datatrove's `process_record`, but: an empty WARC-Identified-Payload-Type (old crawls,
    ClueWeb09) falls back to the HTTP Content-Type and then to libmagic instead of rejecting the
    record; the HTTP charset is tried before chardet; and the reason a record is not a document
    (`not_html` vs `undecodable`) is kept, so stats can tell skipped images from broken pages.
    """
    import cchardet

    wet = rec.rec_type == "conversion"
    allowed = _HTML_TYPES + (("text/plain",) if wet else ())
    mime = _mime(rec.rec_headers.get_header("WARC-Identified-Payload-Type"))
    http_ct = rec.http_headers.get_header("Content-Type") if rec.http_headers is not None else None
    if mime is None and http_ct:
        mime = _mime(http_ct)
    if mime is not None and mime not in allowed:
        return None, "not_html"
    content = rec.content_stream().read()
    if mime is None:
        import magic

        if magic.from_buffer(content[:4096], mime=True) not in allowed:
            return None, "not_html"
    text = None
    for cs in dict.fromkeys(c for c in (_charset(http_ct), "utf-8") if c):
        try:
            text = content.decode(cs)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    if text is None:
        guess = cchardet.detect(content)["encoding"]
        try:
            text = content.decode(guess) if guess else None
        except (UnicodeDecodeError, LookupError):
            text = None
    if text is None:
        return None, "undecodable"
    h = dict(rec.rec_headers.headers)
    return {
        "text": text,
        "id": rec.rec_headers.get_header("WARC-Record-ID"),
        "url": rec.rec_headers.get_header("WARC-Target-URI") or h.get("uri"),
        "date": rec.rec_headers.get_header("WARC-Date") or h.get("archive-date"),
    }, ""


class WarcSource(_Source, WarcReader):
    """WARC/WET records; HTML responses go through trafilatura (datatrove's extractor).

    Records that are not HTML (images, PDFs, robots.txt) are counted as dropped `not_html`
    without a warning: they are ordinary content of a crawl, not bad input.
    """

    name = "read warc"
    extract_html: bool = True

    def read_file(self, filepath: str) -> Iterator[Document]:
        from datatrove.pipeline.extractors import Trafilatura
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        extractor = Trafilatura(favour_precision=True, timeout=5) if self.extract_html else None
        record = -1
        pending = False  # the current record is counted in but not yet out or dropped
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                for record, rec in enumerate(ArchiveIterator(f)):
                    if rec.rec_type not in ("response", "conversion"):
                        continue  # request / metadata / warcinfo records are not documents
                    if self._limit_reached():
                        return
                    self.record_in()
                    pending = True
                    data, why = warc_record_payload(rec)
                    if data is None:
                        pending = False
                        if why == "not_html":
                            self._counts.dropped["not_html"] += 1
                        else:
                            self.bad_record(self._where(filepath), record, why)
                        continue
                    if extractor is not None and rec.rec_type == "response":
                        try:
                            data["text"] = extractor.extract(data["text"]) or ""
                        except Exception as e:  # trafilatura raises a zoo of parser errors on broken HTML
                            pending = False
                            self.bad_record(self._where(filepath), record, "extraction_failed", f"{type(e).__name__}: {e}")
                            continue
                    pending = False
                    doc = self._document(data, filepath, record)
                    if doc is not None:
                        self._yielded()
                        yield doc
        except (ArchiveLoadFailed, EOFError, zlib.error, OSError) as e:
            # a truncated archive: the record being read (or, between records, the rest of the file) is one drop
            if not pending:
                self.record_in()
                record += 1
            self.bad_record(self._where(filepath), record, "truncated_file", f"{type(e).__name__}: {e}")


_READERS = {"jsonl": JsonlSource, "parquet": ParquetSource, "warc": WarcSource}


def split_path(path: str, glob: str | None) -> tuple[str, str | None]:
    """A path naming one file becomes (its folder, its name as glob)."""
    fs, fs_path = fsspec.core.url_to_fs(path)
    if fs.protocol in ("file", ("file", "local")) or "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        if fs.isfile(fs_path):
            folder, _, name = path.rstrip("/").rpartition("/")
            return folder or ".", name
    return path, glob


def make_reader(cfg: InputConfig, on_error: str = "skip", limit: int | None = None) -> _Source:
    folder, glob = split_path(cfg.path, cfg.glob)
    cls = _READERS[cfg.format]
    kwargs: dict[str, Any] = dict(
        data_folder=folder,
        glob_pattern=glob,
        recursive=cfg.recursive,
        text_key=cfg.text_key,
        id_key=cfg.id_key,
    )
    if cfg.format in ("jsonl", "warc"):
        kwargs["compression"] = cfg.compression
    reader = cls(**kwargs)
    reader.max_doc_chars = cfg.max_doc_chars
    reader.doc_limit = cfg.limit if limit is None else limit
    if cfg.format == "warc":
        reader.extract_html = cfg.extract_html
    reader.configure(label="read", on_error=on_error)
    return reader


def list_input_files(cfg: InputConfig) -> list[str]:
    """Files the reader will see (local paths only: remote listing needs the network, done at run time)."""
    folder, glob = split_path(cfg.path, cfg.glob)
    from datatrove.io import get_datafolder

    df = get_datafolder(folder)
    if not df.exists(""):
        raise ConfigError(f"input.path: {cfg.path!r} does not exist")
    return [df.resolve_paths(p) for p in df.list_files(recursive=cfg.recursive, glob_pattern=glob)]


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")
