"""Opening input files, shared by every format: decompression that tells a cut file from a whole one,
and the folder / glob a configured path stands for."""

from __future__ import annotations

import contextlib
import io
import lzma
import zlib
from collections.abc import Iterator
from typing import IO, Any

import fsspec

_BUFFER = 1 << 20


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
        b[:n] = self._out[self._pos : self._pos + n]
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
STREAM_ERRORS: tuple[type[BaseException], ...] = (EOFError, zlib.error, lzma.LZMAError, OSError)


def stream_error_reason(e: BaseException) -> str:
    return "truncated_file" if isinstance(e, EOFError) else "corrupt_file"


def split_path(path: str, glob: str | None) -> tuple[str, str | None]:
    """A path naming one file becomes (its folder, its name as glob)."""
    fs, fs_path = fsspec.core.url_to_fs(path)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" in protocols and fs.isfile(fs_path):
        folder, _, name = path.rstrip("/").rpartition("/")
        return folder or ".", name
    return path, glob


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")
