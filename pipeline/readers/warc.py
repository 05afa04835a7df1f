"""warc: WARC / WET archives; HTML responses go through trafilatura (datatrove's extractor).

Records that are not HTML (images, PDFs, robots.txt) are counted as dropped `not_html` without a
warning: they are ordinary content of a crawl, not bad input. Request, metadata and warcinfo
records are no documents and are not counted at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from .base import CompressedInput, Skip, Source, register_reader
from .files import STREAM_ERRORS, open_input, stream_error_reason

if TYPE_CHECKING:
    import pyarrow as pa

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# the only fields a record carries besides text and id (see warc_record_payload)
_WARC_FIELDS = ("url", "date")


class WarcOptions(CompressedInput):
    """WARC / WET input: whether HTML is reduced to its main text."""

    extract_html: bool = Field(True, description="extract the main text of HTML responses with trafilatura")


@register_reader("warc", WarcOptions)
class WarcSource(Source):
    options: WarcOptions
    extensions = (".warc", ".wet", ".wat", ".arc")

    def records(self, filepath: str) -> Iterator[tuple[int, Any]]:
        from datatrove.pipeline.extractors import Trafilatura
        from warcio.archiveiterator import ArchiveIterator

        self._extractor = Trafilatura(favour_precision=True, timeout=5) if self.options.extract_html else None
        with open_input(self.data_folder, filepath, self.options.compression) as f:
            for record, rec in enumerate(ArchiveIterator(f)):
                yield record, (rec if rec.rec_type in ("response", "conversion") else None)

    def parse(self, raw: Any, record: int) -> Any:
        data, why = warc_record_payload(raw)
        if data is None:
            return Skip(why, bad=why != "not_html")
        if self._extractor is not None and raw.rec_type == "response":
            try:
                data["text"] = self._extractor.extract(data["text"]) or ""
            except Exception as e:  # trafilatura raises a zoo of parser errors on broken HTML
                return Skip("extraction_failed", f"{type(e).__name__}: {e}")
        return data

    def file_errors(self) -> tuple[type[BaseException], ...]:
        from warcio.exceptions import ArchiveLoadFailed

        return (ArchiveLoadFailed, *STREAM_ERRORS)

    def file_error_reason(self, e: BaseException) -> str:
        from warcio.exceptions import ArchiveLoadFailed

        return "truncated_file" if isinstance(e, ArchiveLoadFailed) else stream_error_reason(e)

    def column_types(self, names: list[str], sample_records: int) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {n: pa.string() for n in names if n in _WARC_FIELDS}

    def field_names(self, path: str, records: int) -> set[str] | None:
        return set(_WARC_FIELDS)


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
