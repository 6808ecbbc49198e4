"""Which ListenBrainz listens format each input path is, decided before any work.

- a full or incremental listens dump, `listenbrainz-listens-dump-*.tar.zst` (or `.tar.xz`),
  whose `<archive>/listens/<YYYY>/<M>.listens` members hold one JSON listen per line;
- a Spark listens dump, `listenbrainz-spark-dump-*.tar` of `N.parquet` files, or a folder
  of those files (or a single `.parquet` file);
- a folder of `.listens` files, or one `.listens` file;
- a user export: the zip (`listens/<YYYY>/<M>.jsonl` and `user.json`) or `.jsonl`/`.json`
  files, optionally `.gz`/`.xz`/`.zst`; their lines carry no user name, so one comes from
  user.json or `--user`.
A wrong path, an unknown format or a missing user name fails here, on one line.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import orjson
import pyarrow as pa
import zstandard

from songrec.etl.errors import EtlError

COMPRESSIONS = (".zst", ".xz", ".gz")
TAR_SUFFIXES = (".tar", ".tar.zst", ".tar.xz", ".tar.gz", ".tgz")
# Small files of a dump that describe it; their text goes into the report.
METADATA_FILES = ("SCHEMA_SEQUENCE", "TIMESTAMP", "START_TIMESTAMP", "END_TIMESTAMP")
# Files of a user export that are not listens.
NOT_LISTENS = ("user.json", "feedback.jsonl", "pinned_recording.jsonl", "index.json")
FORMATS_HELP = (
    "a listens dump (.tar.zst/.tar.xz), a Spark dump (.tar or folder of .parquet), "
    ".listens files, or a user export (.zip, .jsonl/.json, optionally .gz/.xz/.zst)"
)
# Errors of a damaged archive or compressed stream, reported as one line.
CORRUPT = (
    duckdb.Error,
    tarfile.TarError,
    zipfile.BadZipFile,
    zstandard.ZstdError,
    lzma.LZMAError,
    gzip.BadGzipFile,
    EOFError,
    pa.ArrowInvalid,
)


@dataclass
@dataclass
class Input:
    """One path to read: its kind (tar, zip, folder, lines, export, parquet) and size."""

    path: Path
    kind: str
    size: int
    user: str | None = None


def kind_of_name(name: str) -> str | None:
    """The kind of a file from its name: tar, zip, parquet, lines, export, or None."""
    lower = name.lower()
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if lower.endswith(".zip"):
        return "zip"
    base = Path(lower).name
    if base in NOT_LISTENS:
        return None
    for suffix in COMPRESSIONS:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    if lower.endswith(".parquet") and lower == name.lower():
        return "parquet"
    if lower.endswith(".listens"):
        return "lines"
    if lower.endswith((".jsonl", ".json")):
        return "export"
    return None


def folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and kind_of_name(p.name))


def _user_json(text: bytes, where: str) -> str:
    try:
        name = orjson.loads(text).get("username")
    except (orjson.JSONDecodeError, AttributeError):
        name = None
    if not isinstance(name, str) or not name.strip():
        raise EtlError(f"{where}: user.json holds no username")
    return name


def _export_user(path: Path, user: str | None) -> tuple[str | None, bool]:
    """(the user of an export: --user first, else its user.json; whether it needs one)."""
    try:
        if path.is_dir():
            names = [str(p) for p in folder_files(path)] + [str(p) for p in path.rglob("user.json")]
            return _owner(names, lambda name: Path(name).read_bytes(), str(path), user)
        with zipfile.ZipFile(path) as archive:
            return _owner(archive.namelist(), archive.read, str(path), user)
    except (zipfile.BadZipFile, OSError) as exc:
        raise EtlError(f"{path}: corrupt or unreadable zip ({exc})") from None


def _owner(names: list[str], read, where: str, user: str | None) -> tuple[str | None, bool]:
    needs = any(kind_of_name(n) == "export" for n in names)
    if user is None:
        found = sorted(n for n in names if Path(n).name == "user.json")
        user = _user_json(read(found[0]), where) if found and needs else None
    return user, needs


def need_user(path: Path, user: str | None) -> str:
    """`user`, or a clear error: export lines carry no user name."""
    if user is None:
        raise EtlError(f"{path} is a user export: its listens carry no user name; pass --user NAME")
    return user


def plan_inputs(paths: list[Path], user: str | None = None) -> list[Input]:
    """Recognise each path's format (one-line errors for anything unreadable or unknown)."""
    inputs = []
    for path in paths:
        if not path.exists():
            raise EtlError(f"no such file or folder: {path}")
        if path.is_dir():
            files = folder_files(path)
            if not files:
                raise EtlError(f"{path}: no listens files in this folder ({FORMATS_HELP})")
            owner, needs = _export_user(path, user)
            if needs:
                owner = need_user(path, owner)
            inputs.append(Input(path, "folder", sum(f.stat().st_size for f in files), owner))
            continue
        kind = kind_of_name(path.name)
        if kind is None:
            raise EtlError(f"{path}: not a ListenBrainz listens format ({FORMATS_HELP})")
        # Not opened here: a named pipe can be read only once.
        if not os.access(path, os.R_OK):
            raise EtlError(f"cannot read {path}: permission denied")
        size = path.stat().st_size
        owner = user
        if kind == "zip":
            owner, needs = _export_user(path, user)
            if needs:
                owner = need_user(path, owner)
        elif kind == "export":
            owner = need_user(path, user)
        inputs.append(Input(path, kind, size, owner))
    return inputs


def decompressed(stream: BinaryIO, name: str) -> BinaryIO:
    """A reading stream that undoes the compression the file name announces."""
    lower = name.lower()
    if lower.endswith((".zst", ".tar.zst")):
        return zstandard.ZstdDecompressor().stream_reader(
            stream, read_size=1 << 20, read_across_frames=True, closefd=False
        )
    if lower.endswith(".xz"):
        return lzma.open(stream)
    if lower.endswith((".gz", ".tgz")):
        return gzip.open(stream)
    return stream


def uncompressed_name(name: str) -> str:
    """The name without a compression suffix, lower-cased."""
    lower = name.lower()
    return next((lower[: -len(c)] for c in COMPRESSIONS if lower.endswith(c)), lower)


def total_bytes(inputs: list[Input]) -> int:
    """Bytes of all inputs as stored (the progress bar's total)."""
    return sum(item.size for item in inputs)


TAR_BLOCK = 512
_PAX_TYPES = (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE)
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the stream."""
    parts, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _skip(stream: BinaryIO, size: int) -> None:
    left = size
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise EOFError("tar archive ends inside a member")
        left -= len(chunk)


def _padded(size: int) -> int:
    return -(-size // TAR_BLOCK) * TAR_BLOCK


def _pax_records(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: `<length> <key>=<value>\n` each."""
    records, pos = {}, 0
    while pos < len(data) and data[pos : pos + 1] != b"\0":
        try:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
        except ValueError:
            raise tarfile.HeaderError("bad pax record") from None
        if length <= space - pos:
            raise tarfile.HeaderError("bad pax record")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarMember(io.RawIOBase):
    """One member's bytes, read straight from the archive's (decompressed) stream into
    the caller's buffer: tarfile's stream mode copies every block through fresh bytes
    objects, which cost more than the zstd decompression itself."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.left = stream, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # Fills the buffer (or the rest of the member) or raises: a stream cut inside
        # the member must be an error, never a short read that looks like its end.
        done = 0
        with memoryview(buffer) as view:
            want = min(len(view), self.left)
            while done < want:
                n = self.stream.readinto(view[done:want])
                if not n:
                    raise EOFError("tar archive ends inside a member")
                done += n
        self.left -= done
        return done

    def readall(self) -> bytes:
        data = bytearray(self.left)
        with memoryview(data) as view:
            done = 0
            while done < len(data):
                done += self.readinto(view[done:])
        return bytes(data)

    def drain(self) -> None:
        """Skip what the reader left of the member."""
        _skip(self.stream, self.left)
        self.left = 0


def stream_members(stream: BinaryIO) -> Iterator[tuple[str, TarMember]]:
    """The regular files of a tar stream in order, as (name, reader): headers parsed by
    tarfile (ustar, GNU and pax names and sizes), data read without copies.

    Each reader is valid until the next member is asked for; what it left is skipped.
    A stream that ends before the end-of-archive blocks is truncated: EOFError.
    """
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        header = _read_exact(stream, TAR_BLOCK)
        if header == bytes(TAR_BLOCK):
            return  # the end-of-archive blocks
        if len(header) < TAR_BLOCK:
            # Stricter than tarfile, which takes a clean cut between two members for the
            # end: a dump cut short would be read in part without a word.
            raise EOFError("tar archive ends before its end-of-archive blocks")
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        if info.type in (*_PAX_TYPES, tarfile.GNUTYPE_LONGNAME, tarfile.XGLTYPE):
            data = _read_exact(stream, _padded(info.size))
            if len(data) < _padded(info.size):
                raise EOFError("tar archive ends inside a header")
            if info.type in _PAX_TYPES:
                pax = _pax_records(data[: info.size])
            elif info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = data[: info.size].rstrip(b"\0").decode("utf-8", "surrogateescape")
            continue  # a global pax header (XGLTYPE) names no member
        name = pax.get("path") or long_name or info.name
        size = int(pax["size"]) if "size" in pax else info.size
        long_name, pax = None, {}
        if info.type in _REGULAR:
            member = TarMember(stream, size)
            yield name, member
            member.drain()
            _skip(stream, _padded(size) - size)
        else:  # directories, links, a GNU long link name: their data (if any) is skipped
            _skip(stream, _padded(size))
