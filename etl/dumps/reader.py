"""ListenBrainz listens in their published formats -> Arrow batches of listens.

`etl.dumps.formats.plan_inputs` recognises each path first; `read_inputs` then streams them:
archives as streams (tar members in order, never unpacked to disk), JSON lines in large
blocks (etl.listen_blocks), Parquet by DuckDB or pyarrow (etl.dumps.parquet). What a dump
says of itself (SCHEMA_SEQUENCE, TIMESTAMP...) goes into the run's report. Progress is
reported in bytes of the inputs as stored (compressed).
"""

from __future__ import annotations

import hashlib
import io
import logging
import queue
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from songrec.etl.dumps.formats import (
    CORRUPT,
    FORMATS_HELP,
    METADATA_FILES,
    Input,
    decompressed,
    folder_files,
    kind_of_name,
    need_user,
    stream_members,
    uncompressed_name,
)
from songrec.etl.dumps.parquet import read_parquet_files, read_parquet_stream
from songrec.etl.dumps.staged import (
    QUERY_ROWS,
    Staged,
    StagingFolder,
    can_stage,
    regroup,
    stage_json_lines,
    stage_parquet,
    stage_parquet_span,
    staged_parquet_file,
)
from songrec.etl.errors import EtlError
from songrec.etl.listen_blocks import BLOCK_BYTES, BlockParser, parse_stream, rebatch
from songrec.etl.listens import Rejects, parse_lines

log = logging.getLogger(__name__)

# Batches read ahead of the aggregation (each about BATCH_ROWS listens).
PREFETCH_BATCHES = 2
FINGERPRINT_READ = 4 << 20


class Meter:
    """Turns positions in each input into byte deltas for a progress callback."""

    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.on_bytes = on_bytes
        self.base = 0
        self.reported = 0
        self.size = 0

    def start(self, size: int) -> None:
        """A new input of `size` bytes begins."""
        self.size = size

    def advance_to(self, position: int) -> None:
        """The current input has been read up to `position` bytes."""
        target = self.base + min(position, self.size)
        if target > self.reported and self.on_bytes is not None:
            self.on_bytes(target - self.reported)
        self.reported = max(self.reported, target)

    def finish(self) -> None:
        """The current input is done."""
        self.advance_to(self.size)
        self.base += self.size


class _Metered(io.RawIOBase):
    """A binary file that reports how far it has been read (pipes included: no tell())."""

    def __init__(self, raw: BinaryIO, meter: Meter | _Shifted) -> None:
        self.raw, self.meter = raw, meter
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.position += n or 0
        self.meter.advance_to(self.position)
        return n

    def seekable(self) -> bool:
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = self.raw.seek(offset, whence)
        return self.position

    def tell(self) -> int:
        return self.position


class _Shifted:
    """A meter seen from one file of a folder: positions are offset by the files before it."""

    def __init__(self, meter: Meter, offset: int) -> None:
        self.meter, self.offset = meter, offset

    def advance_to(self, position: int) -> None:
        self.meter.advance_to(self.offset + position)


def _json_lines(
    stream: BinaryIO,
    name: str,
    parser: BlockParser,
    user: str | None,
    staging: StagingFolder | None = None,
) -> Iterator[pa.Table | Staged]:
    """Listens of one JSON-lines file (staged, when a staging folder is given); a `.json`
    holding one array (older exports) too."""
    buffered = stream if hasattr(stream, "peek") else io.BufferedReader(stream, 1 << 20)
    if uncompressed_name(name).endswith(".json") and buffered.peek(64).lstrip().startswith(b"["):
        try:
            items = orjson.loads(buffered.read())
        except orjson.JSONDecodeError as exc:
            raise EtlError(f"{name}: not valid JSON ({exc})") from None
        # One listen per array item, numbered like lines.
        lines = (orjson.dumps(item) for item in items)
        yield from parse_lines(lines, parser.rejects, name, user)
        return
    if staging is not None:
        if len(parser.buffer) != BLOCK_BYTES:
            parser.buffer = bytearray(BLOCK_BYTES)
        yield from stage_json_lines(buffered, name, user, staging, parser.rejects, parser.buffer)
        return
    yield from parse_stream(buffered, parser, name, user)


# The listens formats a run met (the report's `listen_formats`, etl.pipeline's kinds).
JSON_DUMP, SPARK_DUMP, USER_EXPORT = "listenbrainz-dump", "spark-dump", "user-export"
# A Spark dump has no user names: its listeners are keyed by user id, every other format's
# by name, so the two kinds in one folder would count each listener twice.
KEYED_BY_ID = frozenset([SPARK_DUMP])
_PLURAL = {JSON_DUMP: "JSON listens dumps", USER_EXPORT: "user exports"}
# The listens format of a file, by etl.dumps.formats.kind_of_name's kind.
_FORMAT_OF_KIND = {"parquet": SPARK_DUMP, "lines": JSON_DUMP, "export": USER_EXPORT}


def check_listener_keys(formats: list[str] | set[str], where: str) -> None:
    """Refuse listens formats whose listeners are keyed differently (id against name)."""
    present = set(formats)
    by_name = sorted(present - KEYED_BY_ID)
    if present & KEYED_BY_ID and by_name:
        names = " and ".join(_PLURAL[f] for f in by_name)
        raise EtlError(
            f"{where}: Spark dumps key listeners by user id, {names} by user name, so one "
            "folder of both would count every listener twice: keep a folder to one kind "
            "(ListenBrainz publishes incremental dumps in both formats)"
        )


def known_formats(item: Input) -> set[str]:
    """The listens formats an input holds, as far as names tell (a tar's members are
    known only once read)."""
    if item.kind == "folder":
        kinds = {kind_of_name(file.name) for file in folder_files(item.path)}
    else:
        kinds = {item.kind}
    return {_FORMAT_OF_KIND[kind] for kind in kinds if kind in _FORMAT_OF_KIND}


class DumpReader:
    """Streams listens out of planned inputs; fills `extra` with what the dumps say of
    themselves (SCHEMA_SEQUENCE, TIMESTAMP...), the format of each input and the listens
    formats read (`listen_formats`: sorted, of JSON_DUMP, SPARK_DUMP, USER_EXPORT)."""

    def __init__(
        self, rejects: Rejects, extra: dict, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        self.rejects = rejects
        self.extra = extra
        self.meter = Meter(on_bytes)
        self.found = 0  # listens files met in the current archive
        # Where listens files are staged for the aggregating DuckDB (etl.dumps.staged); None:
        # everything is handed over as Arrow batches.
        self.staging: StagingFolder | None = None
        # The listens formats of the folder appended to: a format keyed differently
        # (check_listener_keys) is refused at its first file, before its listens count.
        self.formats_before: list[str] = []

    def read(self, inputs: list[Input]) -> Iterator[pa.Table | Staged]:
        """All listens of all inputs, in batches of about BATCH_ROWS (or staged files)."""
        # Formats keyed differently are refused before anything is read where the names
        # tell them (a tar's are checked as its members come, see _saw).
        formats = list(self.formats_before)
        for item in inputs:
            formats += known_formats(item)
            check_listener_keys(formats, str(item.path))
        self.parser = BlockParser(self.rejects)
        try:
            rows = self.staging.query_rows if self.staging is not None else QUERY_ROWS
            yield from regroup(rebatch(self._tables(inputs)), query_rows=rows)
        finally:
            self.parser.close()

    def _tables(self, inputs: list[Input]) -> Iterator[pa.Table | Staged]:
        self.extra.setdefault("inputs", [])
        for item in inputs:
            self.extra["inputs"].append({"path": str(item.path), "format": item.kind})
            self.meter.start(item.size)
            log.info("reading %s (%s, %d bytes)", item.path, item.kind, item.size)
            try:
                yield from getattr(self, f"_read_{item.kind}")(item)
            except CORRUPT as exc:
                raise EtlError(f"{item.path}: corrupt or truncated input ({exc})") from None
            except OSError as exc:
                raise EtlError(f"cannot read {item.path}: {exc}") from None
            self.meter.finish()

    def _saw(self, listen_format: str, name: str) -> None:
        seen = self.extra.setdefault("listen_formats", [])
        if listen_format not in seen:
            check_listener_keys([*self.formats_before, *seen, listen_format], name)
            seen.append(listen_format)
            seen.sort()

    def _note(self, item: Input, key: str, text: bytes) -> None:
        meta = self.extra.setdefault("dump_metadata", {}).setdefault(item.path.name, {})
        meta[key] = text.decode("utf-8", "replace").strip()

    def _member(
        self,
        item: Input,
        name: str,
        stream: BinaryIO,
        span: tuple[BinaryIO, int, int] | None = None,
    ) -> Iterator[pa.Table | Staged]:
        """Listens of one file inside an archive or folder, by its name; `span` (file,
        offset, size): where its bytes lie in a plain file, for a staged copy."""
        base = Path(name).name
        if base in METADATA_FILES:
            self._note(item, base, stream.read(4096))
            return
        kind = kind_of_name(name)
        if kind == "parquet":
            self.found += 1
            self._saw(SPARK_DUMP, name)
            if self.staging is not None:
                if span is not None:
                    yield stage_parquet_span(*span, name, self.staging, self.rejects)
                else:
                    yield stage_parquet(stream, name, self.staging, self.rejects)
                return
            # A Parquet file is read from its footer: members of a compressed tar cannot
            # seek, so such a member (128 MB at most in ListenBrainz dumps) is read whole.
            if not item.path.name.lower().endswith(".tar"):
                stream = pa.BufferReader(stream.read())
            yield from read_parquet_stream(stream, name, self.rejects)
        elif kind in ("lines", "export"):
            self.found += 1
            self._saw(_FORMAT_OF_KIND[kind], name)
            user = None if kind == "lines" else item.user or need_user(Path(name), None)
            yield from _json_lines(
                decompressed(stream, name), name, self.parser, user, self.staging
            )

    def _read_tar(self, item: Input) -> Iterator[pa.Table]:
        self.found = 0
        with item.path.open("rb") as raw:
            metered = _Metered(raw, self.meter)
            if item.path.name.lower().endswith(".tar"):
                # A plain tar is seekable: Parquet members are read in place ('r:').
                with tarfile.open(fileobj=metered, mode="r:") as archive:
                    for member in archive:
                        if member.isfile():
                            stream = archive.extractfile(member)
                            # Its bytes lie in the file as they are (unless sparse).
                            span = None
                            if not member.issparse():
                                span = (raw, member.offset_data, member.size)
                            yield from self._member(item, member.name, stream, span)
                            self.meter.advance_to(member.offset_data + member.size)
            else:
                # A compressed one is a stream, read member by member as it comes.
                source = decompressed(metered, item.path.name)
                for name, stream in stream_members(source):
                    yield from self._member(item, name, stream)
        if not self.found:
            raise EtlError(f"{item.path}: no listens in this archive ({FORMATS_HELP})")

    def _read_zip(self, item: Input) -> Iterator[pa.Table]:
        self.found = 0
        with zipfile.ZipFile(item.path) as archive:
            done = 0
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if not info.is_dir():
                    with archive.open(info) as stream:
                        yield from self._member(item, info.filename, stream)
                done += info.compress_size
                self.meter.advance_to(done)
        if not self.found:
            raise EtlError(f"{item.path}: no listens in this zip ({FORMATS_HELP})")

    def _read_folder(self, item: Input) -> Iterator[pa.Table]:
        files = folder_files(item.path)
        for meta in METADATA_FILES:
            for found in item.path.glob(meta):
                self._note(item, meta, found.read_bytes()[:4096])
        parquet = [f for f in files if kind_of_name(f.name) == "parquet"]
        done = 0
        if parquet:
            parquet_bytes = sum(f.stat().st_size for f in parquet)
            rows_total = max(1, sum(_parquet_rows(f) for f in parquet))
            rows_done = 0

            def on_rows(rows: int) -> None:
                nonlocal rows_done
                rows_done += rows
                self.meter.advance_to(parquet_bytes * rows_done // rows_total)

            self._saw(SPARK_DUMP, str(parquet[0]))
            yield from self._parquet_files(parquet, on_rows)
            done = parquet_bytes
        for file in files:
            if file in parquet:
                continue
            with file.open("rb") as raw:
                offset = done
                metered = _Metered(raw, _Shifted(self.meter, offset))
                yield from self._member(item, str(file.relative_to(item.path)), metered)
            done += file.stat().st_size
            self.meter.advance_to(done)

    def _read_lines(self, item: Input) -> Iterator[pa.Table]:
        self.found = 0
        with item.path.open("rb") as raw:
            yield from self._member(item, item.path.name, _Metered(raw, self.meter))

    _read_export = _read_lines

    def _read_parquet(self, item: Input) -> Iterator[pa.Table]:
        rows_total = max(1, _parquet_rows(item.path))
        rows_done = 0

        def on_rows(rows: int) -> None:
            nonlocal rows_done
            rows_done += rows
            self.meter.advance_to(item.size * rows_done // rows_total)

        self._saw(SPARK_DUMP, str(item.path))
        yield from self._parquet_files([item.path], on_rows)

    def _parquet_files(
        self, files: list[Path], on_rows: Callable[[int], None]
    ) -> Iterator[pa.Table | Staged]:
        """Local Parquet files: handed to the aggregating DuckDB to read in place where
        it can (a name without pattern characters), else read here."""
        rest = list(files)
        if self.staging is not None:
            rest = [f for f in files if not can_stage(f.absolute())]
            for file in files:
                if file not in rest:
                    staged = staged_parquet_file(file, file.name, self.rejects, owned=False)
                    yield staged
                    on_rows(staged.rows)
        if rest:
            yield from read_parquet_files(rest, self.rejects, on_rows)


def _parquet_rows(path: Path) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except pa.ArrowInvalid as exc:
        raise EtlError(f"{path}: not a Parquet file ({exc})") from None


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(FINGERPRINT_READ):
            digest.update(chunk)  # hashlib lets go of the GIL on large chunks


def fingerprint(path: Path) -> str | None:
    """sha256 of a dump as stored: a file's bytes; for a folder, its files' relative
    names, sizes and bytes in name order; None for what cannot be read twice (a pipe)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            name = file.relative_to(path).as_posix().encode("utf-8", "surrogateescape")
            digest.update(len(name).to_bytes(8, "big") + name)
            digest.update(file.stat().st_size.to_bytes(8, "big"))
            _hash_file(file, digest)
        return digest.hexdigest()
    if not path.is_file():
        return None
    try:
        _hash_file(path, digest)
    except OSError as exc:
        raise EtlError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


class Fingerprints:
    """`dumps_applied` of one run's inputs, hashed in a background thread while the run
    reads them (hashlib lets go of the GIL): 9 s of a 100M-listen dump no longer comes
    first. Several inputs are hashed at once instead, so the same bytes given twice are
    refused before anything is read. `result()` waits and raises what hashing raised."""

    def __init__(self, inputs: list[Input]) -> None:
        self._applied: list[dict] | None = None
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        if len(inputs) > 1:
            self._applied = dumps_applied(inputs)
            return
        self._thread = threading.Thread(
            target=self._hash, args=(inputs,), name="songrec-fingerprint", daemon=True
        )
        self._thread.start()

    def _hash(self, inputs: list[Input]) -> None:
        try:
            self._applied = dumps_applied(inputs)
        except BaseException as exc:  # raised in the caller's thread by result()
            self._failure = exc

    def result(self) -> list[dict]:
        """The inputs' names, sha256 and sizes (see `dumps_applied`)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            raise self._failure
        return self._applied


def dumps_applied(inputs: list[Input]) -> list[dict]:
    """Name, sha256 and size of each input, for the report's `dumps_applied` (etl dump
    --append refuses a dump already there); the same bytes twice in one run are refused.

    The inputs are read once more for this (a sequential read, hashed at about 1 GB/s):
    a pipe, which cannot be read twice, gets no fingerprint."""
    seen: dict[str, Path] = {}
    applied = []
    for item in inputs:
        sha = fingerprint(item.path)
        if sha is not None and sha in seen:
            raise EtlError(f"{item.path} holds the same bytes as {seen[sha]}: give each dump once")
        if sha is not None:
            seen[sha] = item.path
        applied.append({"name": item.path.name, "sha256": sha, "bytes": item.size})
    return applied


class ListenStream:
    """Listens of planned inputs, to iterate once: Arrow batches, or files staged for
    the aggregator once `stage_in` has given a staging folder (etl.dumps.staged)."""

    def __init__(self, reader: DumpReader, inputs: list[Input], prefetch: int) -> None:
        self.reader, self.inputs, self.prefetch = reader, inputs, prefetch

    def appending_to(self, formats: list[str]) -> None:
        """The listens formats already in the folder appended to (see check_listener_keys)."""
        self.reader.formats_before = list(formats)

    def stage_in(self, folder: StagingFolder) -> None:
        """Stage listens files in `folder` (where DuckDB can read them by name)."""
        if can_stage(folder.folder):
            self.reader.staging = folder

    def __iter__(self) -> Iterator[pa.Table | Staged]:
        batches = self.reader.read(self.inputs)
        return _ahead(batches, self.prefetch) if self.prefetch > 0 else batches


def read_inputs(
    inputs: list[Input],
    rejects: Rejects,
    extra: dict,
    on_bytes: Callable[[int], None] | None = None,
    prefetch: int = PREFETCH_BATCHES,
) -> ListenStream:
    """Listens of planned inputs, batch by batch (see DumpReader).

    With `prefetch` > 0 the reading runs in a background thread that many batches ahead, so
    decompressing and parsing (or staging) overlap the caller's aggregation (zstd, numpy
    and DuckDB let go of the GIL). `rejects` and `extra` are complete once the iterator is
    exhausted.
    """
    return ListenStream(DumpReader(rejects, extra, on_bytes), inputs, prefetch)


_DONE = object()


def _ahead(batches: Iterator[pa.Table], depth: int) -> Iterator[pa.Table]:
    """Iterate `batches` in a thread, up to `depth` items ahead of the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            batches.close()

    worker = threading.Thread(target=produce, name="songrec-dump-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        # The consumer stopped (done, failed or interrupted): let the reader wind down.
        stop.set()
        worker.join()
