"""Triples as delimited text: ``head<TAB>relation<TAB>tail`` per line (TSV, CSV, optionally gzipped).

Reading rules (shared by :func:`load_tsv` and the benchmark split folders):

* the delimiter is ``,`` for ``.csv`` files and a tab otherwise, unless ``delimiter=`` is given; ``.csv`` files
  (or ``delimiter=","``) go through the :mod:`csv` module, so quoted fields may hold commas, quotes and newlines;
* blank lines and lines whose first character is ``#`` are skipped (a key that starts with ``#`` must be quoted
  in a CSV file and cannot be written to a TSV file);
* a first row such as ``head relation tail``, ``subject predicate object`` or ``h r t`` (any case) is a header
  and is skipped when ``header=None``; ``header=True`` always skips the first row, ``header=False`` never;
* Windows line ends are accepted; whitespace around a field is stripped, so keys never begin or end with it;
* duplicates are dropped and counted per split by :class:`~kgreason.kb.store.TripleStoreBuilder`.

Plain TSV is parsed a block of lines at a time with ``str.split`` and dict interning (FB15k-237's 272k-line
``train.txt.gz`` loads in well under a second); bad input raises :class:`~kgreason.core.errors.KBFormatError` with
the file, the line and what was expected, and nothing is returned half-loaded.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from kgreason.core.atomic import atomic_text_output
from kgreason.core.errors import KBFormatError
from kgreason.kb.sources import require_regular_file
from kgreason.kb.store import TripleStore, TripleStoreBuilder

if TYPE_CHECKING:
    from tqdm import tqdm

    from kgreason.kb.base import KnowledgeBase

#: Accepted header cells per column (compared lower-cased).
HEADER_NAMES = (
    frozenset({"head", "h", "subject", "subj", "s", "source", "src", "from", "e1", "entity1", "head_id"}),
    frozenset({"relation", "rel", "r", "predicate", "pred", "p", "relation_type", "edge_type", "type"}),
    frozenset({"tail", "t", "object", "obj", "o", "target", "dst", "to", "e2", "entity2", "tail_id"}),
)
EXPECTED_COLUMNS = "3 columns (head, relation, tail)"
EXPECTED_NAMES = "key<TAB>name[<TAB>alias...]"
#: Files at least this large (on disk, all files of one load together) get a progress bar.
PROGRESS_MIN_BYTES = 4 << 20
_BLOCK_BYTES = 16 << 20
_COLUMN_NAMES = ("head", "relation", "tail")


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _stem(path: Path) -> str:
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem or name


def default_delimiter(path: str | Path) -> str:
    """``","`` for ``.csv`` / ``.csv.gz`` files, a tab otherwise."""
    return "," if _suffix(Path(path)) == ".csv" else "\t"


def is_header(cells: list[str]) -> bool:
    """Whether a row names the columns (``head relation tail``, ``subject predicate object``, ``h r t``, ...)."""
    return len(cells) == 3 and all(
        c.strip().lower() in names for c, names in zip(cells, HEADER_NAMES, strict=True)
    )


def _is_ascii_compatible(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    return "\n#\t,".encode(encoding, errors="replace") == b"\n#\t,"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while millions of small lists are made (it would rescan them all, ~8x slower)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _open_binary(path: Path) -> Iterator[tuple[IO[bytes], IO[bytes]]]:
    """``(reader, raw)``: ``reader`` yields the (decompressed) bytes, ``raw.tell()`` is the position on disk.

    A FIFO or device is refused (:class:`KBFormatError`) instead of read forever.
    """
    require_regular_file(path)
    with open(path, "rb") as raw:
        if path.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped, raw
        else:
            yield raw, raw


@contextlib.contextmanager
def _gzip_errors(path: Path) -> Iterator[None]:
    """A damaged ``.gz`` file read inside the block is one :class:`KBFormatError` naming it."""
    try:
        yield
    except (gzip.BadGzipFile, zlib.error, EOFError) as err:
        raise KBFormatError(f"not a readable gzip file: {err}", path=path, expected="gzip data") from None


def _blocks(reader: IO[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines (each ends with ``\\n`` except perhaps the last)."""
    carry = b""
    while chunk := reader.read(_BLOCK_BYTES):
        chunk = carry + chunk
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            carry = chunk
            continue
        carry = chunk[cut:]
        yield chunk[:cut]
    if carry:
        yield carry


def _decode(data: bytes, *, encoding: str, path: Path, first_line: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise _decode_error(err, data, encoding=encoding, path=path, first_line=first_line) from None


def _decode_error(
    err: UnicodeDecodeError, data: bytes, *, encoding: str, path: Path, first_line: int
) -> KBFormatError:
    line = first_line + data.count(b"\n", 0, err.start)
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    bad = data[err.start : err.end].hex(" ")
    return KBFormatError(
        f"cannot decode byte(s) {bad} as {encoding} ({err.reason}); if the file is in another encoding, "
        "pass encoding= (e.g. encoding='latin-1')",
        path=path,
        line=line,
        column=column,
        expected=f"{encoding} text",
    )


def _column_error(cells: list[str], *, delimiter: str, path: Path, line: int) -> KBFormatError:
    if len(cells) == 3:
        which = ", ".join(name for name, cell in zip(_COLUMN_NAMES, cells, strict=True) if not cell)
        return KBFormatError(
            f"empty {which}", path=path, line=line, expected="3 non-empty columns (head, relation, tail)"
        )
    shown = {"\t": "tab", ",": "comma", " ": "space", ";": "semicolon"}.get(delimiter, repr(delimiter))
    message = f"found {len(cells)} column{'s' if len(cells) != 1 else ''} separated by {shown}"
    if len(cells) == 1:
        message += "; if the file uses another separator, pass delimiter="
    return KBFormatError(message, path=path, line=line, expected=EXPECTED_COLUMNS)


_SPACES = " \t\r\f\v"


def _has_stray_space(text: str, delimiter: str) -> bool:
    """Whether any field may start or end with whitespace (cheap substring scans, no per-line work)."""
    for space in _SPACES:
        if space == delimiter or space not in text:
            continue
        if (
            space + delimiter in text
            or delimiter + space in text
            or space + "\n" in text
            or "\n" + space in text
            or text.startswith(space)
            or text.endswith(space)
        ):
            return True
    return False


def _skippable(cells: list[str]) -> bool:
    """A blank line or a ``#`` comment."""
    return cells == [""] or cells[0][:1] == "#"


def _read_plain(
    builder: TripleStoreBuilder,
    path: Path,
    *,
    split: str,
    delimiter: str,
    header: bool | None,
    encoding: str,
    bar: tqdm | None,
) -> int:
    """Fast path for unquoted delimited text; returns the number of rows read."""
    ascii_compatible = _is_ascii_compatible(encoding)
    rows_read = 0
    line_base = 1  # line number of the first line of the current block
    header_pending = header is not False
    with _open_binary(path) as (reader, raw), _gc_paused():
        # Blocks are cut after a b"\n"; an encoding where that byte can sit inside a character is read whole.
        blocks = _blocks(reader) if ascii_compatible else iter([reader.read()])
        position = 0
        for block in blocks:
            text = _decode(block, encoding=encoding, path=path, first_line=line_base)
            if line_base == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            has_stray = _has_stray_space(text, delimiter)
            if has_stray:
                rows = [[cell.strip(_SPACES) for cell in line.split(delimiter)] for line in lines]
            else:
                rows = [line.split(delimiter) for line in lines]
            skip: set[int] = set()
            if header_pending:
                first = next((i for i, r in enumerate(rows) if not _skippable(r)), None)
                if first is not None:
                    header_pending = False
                    if header or is_header(rows[first]):
                        skip.add(first)
            if has_stray or text.startswith("#") or "\n#" in text:
                bad = [i for i, r in enumerate(rows) if len(r) != 3 or "" in r or r[0][:1] == "#"]
            else:
                bad = [i for i, r in enumerate(rows) if len(r) != 3 or "" in r]
            for i in bad:
                if i in skip or _skippable(rows[i]):
                    skip.add(i)
                    continue
                raise _column_error(rows[i], delimiter=delimiter, path=path, line=line_base + i)
            if skip:
                rows = [r for i, r in enumerate(rows) if i not in skip]
            builder.add_many(rows, split=split)
            rows_read += len(rows)
            line_base += len(lines)
            if bar is not None:
                now = raw.tell()
                bar.update(now - position)
                position = now
    return rows_read


class _LineFeed:
    """Decoded physical lines for :mod:`csv`; drops blank and ``#`` lines between records, tracks line numbers."""

    def __init__(self, reader: IO[bytes], *, encoding: str, path: Path) -> None:
        self.reader = reader
        self.encoding = encoding
        self.path = path
        self.line = 0  # physical lines read so far
        self.record_start: int | None = None  # first physical line of the record being read

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)()
        for raw_line in self.reader:
            self.line += 1
            try:
                line = decoder.decode(raw_line)
            except UnicodeDecodeError as err:
                raise _decode_error(
                    err, raw_line, encoding=self.encoding, path=self.path, first_line=self.line
                ) from None
            if self.line == 1:
                line = line.removeprefix("\ufeff")
            if self.record_start is None:
                if not line.strip() or line.startswith("#"):
                    continue
                self.record_start = self.line
            yield line


def _read_csv(
    builder: TripleStoreBuilder,
    path: Path,
    *,
    split: str,
    delimiter: str,
    header: bool | None,
    encoding: str,
    bar: tqdm | None,
) -> int:
    """Quoted CSV through :mod:`csv`; returns the number of rows read."""
    rows: list[list[str]] = []
    header_pending = header is not False
    with _open_binary(path) as (reader, raw), _gc_paused():
        feed = _LineFeed(reader, encoding=encoding, path=path)
        records = csv.reader(feed, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
        position = 0
        while True:
            try:
                cells = next(records)
            except StopIteration:
                break
            except csv.Error as err:
                raise KBFormatError(
                    f"bad CSV ({err})",
                    path=path,
                    line=feed.record_start or feed.line,
                    expected=EXPECTED_COLUMNS,
                ) from None
            start, feed.record_start = feed.record_start or feed.line, None
            cells = [c.strip(_SPACES) for c in cells]
            if header_pending:
                header_pending = False
                if header or is_header(cells):
                    continue
            if len(cells) != 3 or "" in cells:
                raise _column_error(cells, delimiter=delimiter, path=path, line=start)
            rows.append(cells)
            if bar is not None and len(rows) % 65536 == 0:
                bar.update(raw.tell() - position)
                position = raw.tell()
        if bar is not None:
            bar.update(raw.tell() - position)
    builder.add_many(rows, split=split)
    return len(rows)


def read_triples_into(
    builder: TripleStoreBuilder,
    path: str | Path,
    *,
    split: str = "all",
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    bar: tqdm | None = None,
) -> int:
    """Add the triples of one delimited file to ``builder`` under ``split``; return the rows read.

    Used by :func:`load_tsv` and by the split-folder loader (one builder, shared ids across splits).
    ``bar`` is advanced by the bytes read from disk.
    """
    path = Path(path)
    delimiter = default_delimiter(path) if delimiter is None else delimiter
    if not delimiter or "\n" in delimiter or "\r" in delimiter:
        raise ValueError(f"bad delimiter {delimiter!r}")
    quoted = _suffix(path) == ".csv" or delimiter == ","
    read = _read_csv if quoted else _read_plain
    with _gzip_errors(path):
        return read(
            builder, path, split=split, delimiter=delimiter, header=header, encoding=encoding, bar=bar
        )


def read_text_file(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The whole text of a (possibly gzipped) file; undecodable bytes raise :class:`KBFormatError` with the line."""
    path = Path(path)
    with _gzip_errors(path), _open_binary(path) as (reader, _raw):
        data = reader.read()
    return _decode(data, encoding=encoding, path=path, first_line=1).removeprefix("\ufeff")


def read_names_into(builder: TripleStoreBuilder, path: str | Path, *, encoding: str = "utf-8") -> int:
    """Give labels and aliases from a ``key<TAB>name[<TAB>alias...]`` file to entities already in ``builder``.

    Keys that are not entities of the KB are ignored (a names file may cover a larger KG); returns how many
    lines named a known entity. Blank and ``#`` lines are skipped.
    """
    path = Path(path)
    text = read_text_file(path, encoding=encoding)
    known = builder.entity_ids
    used = 0
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        cells = [c.strip(_SPACES) for c in line.split("\t")]
        if len(cells) < 2 or not cells[0]:
            raise KBFormatError(
                f"found {len(cells)} column{'s' if len(cells) != 1 else ''}",
                path=path,
                line=number,
                expected=EXPECTED_NAMES,
            )
        if cells[0] not in known:
            continue
        used += 1
        builder.add_label(cells[0], cells[1], preferred=True)
        for alias in cells[2:]:
            builder.add_label(cells[0], alias, preferred=False)
    return used


def progress_bar(*, total: int, desc: str, enabled: bool) -> tqdm | None:
    """A bytes progress bar when ``enabled`` and ``total`` is at least :data:`PROGRESS_MIN_BYTES`."""
    if not enabled or total < PROGRESS_MIN_BYTES:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, leave=False)


def load_tsv(
    source: str | Path,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    names: str | Path | None = None,
    encoding: str = "utf-8",
    split: str = "all",
    name: str | None = None,
    progress: bool = True,
) -> TripleStore:
    """Load ``head, relation, tail`` rows from a TSV/CSV file (``.gz`` accepted) into a :class:`TripleStore`.

    Args:
        source: the file.
        delimiter: column separator; ``","`` for ``.csv``, else a tab.
        header: ``None`` detects a header row (``head relation tail`` and similar), ``True`` / ``False`` force it.
        names: optional ``key<TAB>name[<TAB>alias...]`` file giving entity labels and aliases.
        encoding: text encoding (``"latin-1"`` for legacy files).
        split: the split name the triples go to.
        name: KB name (default: the file name without extensions).
        progress: show a progress bar for large files.

    Raises:
        KBFormatError: wrong column count, an empty field, undecodable bytes or no triples at all (the message
            names the file and line).
    """
    path = Path(source)
    require_regular_file(path)
    builder = TripleStoreBuilder(name=name or _stem(path), source=str(path))
    bar = progress_bar(total=path.stat().st_size, desc=f"reading {path.name}", enabled=progress)
    try:
        count = read_triples_into(
            builder, path, split=split, delimiter=delimiter, header=header, encoding=encoding, bar=bar
        )
    finally:
        if bar is not None:
            bar.close()
    if count == 0:
        raise KBFormatError("no triples", path=path, expected=f"at least one row of {EXPECTED_COLUMNS}")
    if names is not None:
        read_names_into(builder, names, encoding=encoding)
    return builder.build()


def _check_key(key: str, *, delimiter: str, quoted: bool, head: bool) -> None:
    if not key or key != key.strip(_SPACES):
        raise ValueError(f"key {key!r} is empty or has surrounding whitespace, which TSV/CSV cannot keep")
    if not quoted and (delimiter in key or "\n" in key or "\r" in key):
        raise ValueError(f"key {key!r} holds the delimiter or a line break; write a .csv file instead")
    if head and not quoted and key.startswith("#"):
        raise ValueError(
            f"head key {key!r} starts with '#', which TSV readers take as a comment; write a .csv"
        )


def write_tsv(kb: KnowledgeBase, path: str | Path, *, split: str | None = None, header: bool = False) -> Path:
    """Write ``kb``'s triples (by key) as TSV, or CSV for a ``.csv`` path (``.gz`` compresses), atomically.

    ``split=None`` writes every split. :func:`load_tsv` reads the file back to the same keys and triples.

    Raises:
        ValueError: a key the format cannot hold (empty, surrounding whitespace; in TSV a tab, a line break,
            or a head key starting with ``#``).
    """
    import numpy as np

    target = Path(path)
    delimiter = default_delimiter(target)
    quoted = delimiter == ","
    rows = np.asarray(kb.triples(split).numpy(), dtype=np.int64)  # (n, 3)
    entity_keys = [kb.entity_key(i) for i in range(kb.num_entities)]
    relation_keys = [kb.relation_key(r) for r in range(kb.num_relations)]
    heads = set(rows[:, 0].tolist())
    for i in sorted(set(rows[:, [0, 2]].reshape(-1).tolist())):
        _check_key(entity_keys[i], delimiter=delimiter, quoted=quoted, head=i in heads)
    for r in sorted(set(rows[:, 1].tolist())):
        _check_key(relation_keys[r], delimiter=delimiter, quoted=quoted, head=False)
    with atomic_text_output(target) as text:
        if quoted:
            # A head key starting with '#' must be quoted, or the reader would take the line as a comment.
            quote_all = any(entity_keys[h].startswith("#") for h in heads)
            writer = csv.writer(
                text, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
            )
            if header:
                writer.writerow(_COLUMN_NAMES)
            writer.writerows((entity_keys[h], relation_keys[r], entity_keys[t]) for h, r, t in rows.tolist())
        else:
            if header:
                text.write("\t".join(_COLUMN_NAMES) + "\n")
            text.writelines(
                f"{entity_keys[h]}\t{relation_keys[r]}\t{entity_keys[t]}\n" for h, r, t in rows.tolist()
            )
    return target
