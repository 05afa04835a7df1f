"""Input: datatrove's jsonl / parquet / WARC readers with accounting and clear bad-input handling.

datatrove's readers skip broken records with a warning and drop empty ones silently; ours count
every input record and either drop it with a reason (`on_error: skip`, the default; the file and
record are logged) or stop with an `InputError` naming them (`on_error: fail`). Each document
carries `source_file` and `source_record` (its 0-based position in that file).

Compressed input (gzip, bz2, xz, zstd) that is cut short is one `truncated_file` drop, corrupt
compressed data one `corrupt_file`; what was read before stays. `metadata_column_types` decides
the output type of `output.metadata_columns` from the input before the run.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import lzma
import zlib
from typing import IO, TYPE_CHECKING, Any, Iterator, Sequence

import fsspec
from datatrove.data import Document
from datatrove.pipeline.readers import JsonlReader, ParquetReader, WarcReader

from .config import InputConfig
from curate.core.errors import ConfigError
from curate.core.steps import Accounted

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_FILE = "source_file"
SOURCE_RECORD = "source_record"
_MISSING = object()
_BUFFER = 1 << 20


def record_metadata(data: dict) -> dict:
    """The metadata of a record (text and id already taken out): its nested `metadata` object's fields,
    then every other top-level field (which wins on a name clash)."""
    metadata = data.pop("metadata", None)
    meta = dict(metadata) if isinstance(metadata, dict) else {}
    meta.update(data)
    return meta


class _ZstdFile(io.RawIOBase):
    """zstd decompression (every frame) that raises EOFError when the input ends inside a frame.

    fsspec's zstd reader returns what it could decode and then b"" on a truncated file, so a cut
    `.jsonl.zst` read as complete: a small one as empty, a larger one with the cut line as
    `bad_json` and the rest silently gone. gzip, bz2 and xz raise EOFError there; this does too.
    Corrupt data raises OSError (zstandard's own ZstdError is no OSError).
    """

    def __init__(self, raw: IO[bytes], chunk: int = 1 << 17) -> None:
        import zstandard

        self._raw, self._chunk, self._error = raw, chunk, zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._obj: Any = None  # the frame being decoded (None between frames)
        self._out, self._pos = b"", 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos == len(self._out):
            data = b""
            if self._obj is not None and self._obj.eof:
                data, self._obj = self._obj.unused_data, None  # the next frame may start right here
            data = data or self._raw.read(self._chunk)
            if not data:
                if self._obj is not None:
                    raise EOFError("zstd: compressed file ended before the end of a frame")
                return 0
            if self._obj is None:
                self._obj = self._dctx.decompressobj()
            try:
                self._out, self._pos = self._obj.decompress(data), 0
            except self._error as e:
                raise OSError(f"zstd: {e}") from None
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos: self._pos + n]
        self._pos += n
        return n


@contextlib.contextmanager
def open_input(folder: Any, path: str, compression: str | None) -> Iterator[IO[bytes]]:
    """A buffered binary stream of an input file, decompressed (gzip, bz2, xz, zstd by extension under
    `infer`); a truncated compressed file raises EOFError, a corrupt one OSError or zlib/lzma errors."""
    codec = fsspec.utils.infer_compression(path) if compression == "infer" else compression
    if codec == "zstd":
        with folder.open(path, "rb") as raw:
            yield io.BufferedReader(_ZstdFile(raw), _BUFFER)
        return
    with folder.open(path, "rb", compression=codec) as f:
        yield f if hasattr(f, "peek") else io.BufferedReader(f, _BUFFER)


# what reading a compressed stream raises when it is cut short (EOFError) or corrupt (the rest)
_STREAM_ERRORS = (EOFError, zlib.error, lzma.LZMAError, OSError)


def _stream_error_reason(e: BaseException) -> str:
    return "truncated_file" if isinstance(e, EOFError) else "corrupt_file"


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
        meta = record_metadata(data)
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
            with open_input(self.data_folder, filepath, self.compression) as f:
                for record, line in enumerate(f):
                    if self._limit_reached():
                        return
                    self.record_in()
                    if record == 0 and line.startswith(codecs.BOM_UTF8):
                        # Windows tools start UTF-8 files with a BOM; orjson rejects it (the first record was lost)
                        line = line[len(codecs.BOM_UTF8):]
                        self.stat_update("utf8_bom_removed")
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
        except _STREAM_ERRORS as e:
            # a truncated or corrupt compressed file: what was read is kept, the rest is one drop
            self.record_in()
            self.bad_record(self._where(filepath), record + 1, _stream_error_reason(e), f"{type(e).__name__}: {e}")


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
            with open_input(self.data_folder, filepath, self.compression) as f:
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
        except (ArchiveLoadFailed, *_STREAM_ERRORS) as e:
            # a truncated archive: the record being read (or, between records, the rest of the file) is one drop
            if not pending:
                self.record_in()
                record += 1
            why = "truncated_file" if isinstance(e, ArchiveLoadFailed) else _stream_error_reason(e)
            self.bad_record(self._where(filepath), record, why, f"{type(e).__name__}: {e}")


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


# ---------------------------------------------------------------------------- output column types

# records of JSONL input whose values decide each metadata column's type (read at plan time)
TYPE_SAMPLE_RECORDS = 1000
_TYPE_SAMPLE_FILES = 16
# the only fields a WARC record carries besides text and id (see warc_record_payload)
_WARC_FIELDS = ("url", "date")


def metadata_column_types(cfg: InputConfig, names: Sequence[str],
                          sample_records: int = TYPE_SAMPLE_RECORDS) -> dict[str, pa.DataType | None]:
    """The Arrow type of each `output.metadata_columns` name, decided before the run from the input.

    Parquet: the first readable file's schema (a top-level field, else a field of a `metadata` struct,
    as the reader flattens it). JSONL: pyarrow's inference over the first `sample_records` records
    of the first files; values of inconsistent types make the column a string (a JSON string that
    looks like a timestamp stays a string: JSON has none). WARC: `url` and `date` are strings.
    None means the name was never seen there (the caller warns; the column is written as null
    strings). The text and id fields are taken by the reader and are never metadata.
    """
    import pyarrow as pa

    wanted = [n for n in dict.fromkeys(names) if n not in (cfg.text_key, cfg.id_key)]
    types: dict[str, pa.DataType | None] = {n: None for n in names}
    if not wanted:
        return types
    if cfg.format == "warc":
        types.update({n: pa.string() for n in wanted if n in _WARC_FIELDS})
        return types
    folder, files = _input_files_for_types(cfg)
    if cfg.format == "parquet":
        types.update(_parquet_types(folder, files, wanted))
    else:
        types.update(_jsonl_types(folder, files, wanted, cfg.compression, sample_records))
    return types


def _input_files_for_types(cfg: InputConfig) -> tuple[Any, list[str]]:
    from datatrove.io import get_datafolder

    folder, glob = split_path(cfg.path, cfg.glob)
    df = get_datafolder(folder)
    if not df.exists(""):
        return df, []
    return df, df.list_files(recursive=cfg.recursive, glob_pattern=glob)[:_TYPE_SAMPLE_FILES]


def _parquet_types(folder: Any, files: list[str], names: list[str]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in files:
        try:
            with folder.open(path, "rb") as f:
                schema = pq.read_schema(f)
        except (pa.ArrowException, OSError):
            continue  # a corrupt file: the reader reports it at run time; try the next one
        nested = schema.field("metadata").type if "metadata" in schema.names else None
        out: dict[str, Any] = {}
        for n in names:
            if n in schema.names and n != "metadata":
                out[n] = settle_type(schema.field(n).type)
            elif nested is not None and pa.types.is_struct(nested) and nested.get_field_index(n) >= 0:
                out[n] = settle_type(nested.field(n).type)
        return out
    return {}


def _jsonl_types(folder: Any, files: list[str], names: list[str], compression: str | None, limit: int) -> dict[str, Any]:
    import orjson

    values: dict[str, list] = {n: [] for n in names}
    seen: set[str] = set()
    count = 0
    for path in files:
        try:
            with open_input(folder, path, compression) as f:
                for line in f:
                    if count >= limit:
                        break
                    try:
                        data = orjson.loads(line[len(codecs.BOM_UTF8):] if line.startswith(codecs.BOM_UTF8) else line)
                    except orjson.JSONDecodeError:
                        continue  # the reader counts it at run time
                    if not isinstance(data, dict):
                        continue
                    count += 1
                    meta = record_metadata(data)
                    for n in names:
                        v = meta.get(n, _MISSING)
                        if v is not _MISSING:
                            seen.add(n)
                            if v is not None:
                                values[n].append(v)
        except _STREAM_ERRORS:
            pass  # a broken file: what was read counts; the reader reports the file at run time
        if count >= limit:
            break
    return {n: infer_type(values[n]) for n in names if n in seen}


def infer_type(values: list) -> pa.DataType:
    """pyarrow's type for these Python values (JSON-decoded), string when they do not agree on one."""
    import pyarrow as pa

    if not values:
        return pa.string()
    try:
        arr = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return pa.string()
    # pyarrow's inference bends some values to agree: [0.5, false] becomes list<double> [0.5, 0.0]
    if not all(_same_value(a, b) for a, b in zip(arr.to_pylist(), values)):
        return pa.string()
    return settle_type(arr.type)


def _same_value(a: Any, b: Any) -> bool:
    """Equal as data: 1 and 1.0 are, False and 0.0 are not (Python says they are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        # pyarrow fills the fields a record lacks with null
        return set(b) <= set(a) and all(_same_value(a[k], b.get(k)) for k in a)
    return a == b


def settle_type(t: pa.DataType) -> pa.DataType:
    """A type fit for an output column: no null or empty-struct leaves (they would reject every later
    value; string instead), dictionary columns as their value type, float16 as float32."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return settle_type(t.value_type)
    if pa.types.is_null(t):
        return pa.string()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_struct(t):
        if t.num_fields == 0:
            return pa.string()
        return pa.struct([f.with_type(settle_type(f.type)) for f in t])
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(settle_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(settle_type(t.value_type)), t.list_size)
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(settle_type(t.value_type)))
    if pa.types.is_map(t):
        return pa.map_(settle_type(t.key_type), settle_type(t.item_type))
    return t
