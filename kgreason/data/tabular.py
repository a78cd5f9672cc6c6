"""A generic reader of your own labelled text: JSONL, CSV or TSV files whose columns a config names.

``kgreason.Tabular.v1`` (alias ``tabular``) reads sequence-classification examples (a text, an optional second
text, a label) with no Python to write::

    data:
      dataset: kgreason.Tabular.v1
      options:
        train: reviews/train.jsonl     # or file: reviews/all.csv, split stratified 80/10/10 with split_seed
        dev: reviews/dev.jsonl
        test: reviews/test.jsonl
        text_column: review
        label_column: stars

A JSONL file holds one JSON object per line; a CSV or TSV file starts with a header row naming its columns
and is read with :mod:`csv` (quotes as :func:`csv.writer` writes them; TSV is the same with tabs). The format
comes from the file's extension (``.jsonl`` / ``.ndjson``, ``.csv``, ``.tsv``) unless ``format`` names it.
Every problem is one :class:`~kgreason.data.errors.DatasetFormatError` naming the file and the line; the work
on a file is bounded (``max_lines`` lines of at most ``max_line_bytes`` bytes each).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from kgreason.core.errors import ConfigError
from kgreason.core.example import Example
from kgreason.core.paths import missing_path_message, resolve_data_path
from kgreason.core.registry import did_you_mean
from kgreason.data.errors import DatasetFormatError, DatasetNotFoundError
from kgreason.data.splits import DatasetSplits, stratified_split

#: The registered name; the splits carry it as their ``name``.
TABULAR_NAME = "kgreason.Tabular.v1"
#: Format -> file extensions that select it.
FORMATS = {"jsonl": (".jsonl", ".ndjson"), "csv": (".csv",), "tsv": (".tsv",)}
#: The metadata key retrieval reads its query from (``kgreason.models.knowledge.QUERY_KEY``, a higher layer).
KNOWLEDGE_QUERY = "knowledge_query"

Row = tuple[int, dict[str, Any]]  # (line number, column -> value)


def read_tabular(
    *,
    data_dir: str | Path | None = None,
    train: str | None = None,
    dev: str | None = None,
    test: str | None = None,
    file: str | None = None,
    format: str | None = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_column: str = "label",
    id_column: str | None = None,
    entities_column: str | None = None,
    entities_separator: str = "|",
    labels: Sequence[str] | None = None,
    split_seed: int = 42,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    max_lines: int = 2_000_000,
    max_line_bytes: int = 1_000_000,
) -> DatasetSplits:
    """Labelled texts from ``train`` / ``dev`` / ``test`` files, or from one ``file`` split stratified.

    Args:
        data_dir: where a relative path is looked up when it is not found as given (default: the data
            folder).
        train, dev, test: the three split files (give all three, or ``file`` instead).
        file: one file, split train / dev / test in ``fractions`` with ``split_seed``, stratified by label;
            examples with the same text (and second text) stay in one split.
        format: ``jsonl``, ``csv`` or ``tsv`` for every file (default: from each file's extension).
        text_column: the column of the text.
        text_pair_column: the column of an optional second text (a query, a hypothesis); a blank value or JSON
            ``null`` means none.
        label_column: the column of the label (a string; an integer in JSONL is read as its digits).
        id_column: the column of a unique example id (default: ``<file name>:<line>``).
        entities_column: the column of the entity mentions retrieval starts from (a JSON list of strings, or a
            string of mentions separated by ``entities_separator``); kept in ``metadata["entities"]``.
        entities_separator: what separates the mentions in a string (CSV / TSV cells).
        labels: the label set in label-id order (default: the sorted labels of the train file); a label
            outside it is an error.
        split_seed, fractions: the split of ``file``.
        max_lines: read at most this many lines per file (blank ones included).
        max_line_bytes: the longest line (and CSV field) accepted, in bytes.

    Raises:
        ConfigError: options that do not fit together.
        DatasetNotFoundError: a file that is not there.
        DatasetFormatError: a malformed file (names the file and the line).
    """
    _check_options(
        file=file,
        train=train,
        dev=dev,
        test=test,
        format=format,
        labels=labels,
        split_seed=split_seed,
        fractions=fractions,
        max_lines=max_lines,
        max_line_bytes=max_line_bytes,
    )
    columns = _Columns(
        text=text_column,
        text_pair=text_pair_column,
        label=label_column,
        uid=id_column,
        entities=entities_column,
        separator=entities_separator,
    )
    fixed = None if labels is None else [str(label) for label in labels]
    read = partial(_read, columns=columns, format=format, limits=(max_lines, max_line_bytes), uids={})
    if file is not None:
        parts, files, label_set = _one_file(
            file, data_dir=data_dir, read=read, fixed=fixed, split_seed=split_seed, fractions=fractions
        )
        options: dict[str, Any] = {"file": file, "split_seed": split_seed, "fractions": list(fractions)}
    else:
        named = {"train": str(train), "dev": str(dev), "test": str(test)}
        parts, files, label_set = _split_files(named, data_dir=data_dir, read=read, fixed=fixed)
        options = {"train": train, "dev": dev, "test": test}
    options.update(
        format=format,
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        id_column=id_column,
        entities_column=entities_column,
        labels=fixed,
    )
    splits = DatasetSplits(
        name=TABULAR_NAME,
        train=parts["train"],
        dev=parts["dev"],
        test=parts["test"],
        labels=list(label_set),
        files=files,
        options=options,
    )
    counts = Counter(example.label for split in parts.values() for example in split)
    splits.info = {
        "files": [path.name for path in files],
        "sizes": splits.sizes,
        "label_counts": {label: counts.get(label, 0) for label in label_set},
        "split_label_counts": {split: splits.label_counts(split) for split in ("train", "dev", "test")},
    }
    return splits


def _one_file(
    file: str,
    *,
    data_dir: str | Path | None,
    read: Callable[[Path], list[Example]],
    fixed: list[str] | None,
    split_seed: int,
    fractions: Sequence[float],
) -> tuple[dict[str, list[Example]], list[Path], list[str]]:
    """The examples of ``file`` split stratified (same text, same split), the file, and the label set."""
    path = _locate("file", file, data_dir)
    examples = read(path)
    label_set = fixed or sorted({example.label for example in examples})
    _check_labels(examples, path, label_set, where="the labels option" if fixed else None)
    try:
        indices = stratified_split(
            [example.label for example in examples],
            fractions=fractions,
            seed=split_seed,
            groups=[(example.text, example.text_pair) for example in examples],
        )
    except ValueError as err:  # too few examples of a label
        raise DatasetFormatError(f"cannot split {len(examples)} examples: {err}", path=path) from None
    parts = {split: [examples[i] for i in getattr(indices, split)] for split in ("train", "dev", "test")}
    return parts, [path], label_set


def _split_files(
    named: dict[str, str],
    *,
    data_dir: str | Path | None,
    read: Callable[[Path], list[Example]],
    fixed: list[str] | None,
) -> tuple[dict[str, list[Example]], list[Path], list[str]]:
    """The examples of each split's file, the files, and the label set (``fixed``, else the train file's)."""
    parts, files = {}, []
    for split, given in named.items():
        path = _locate(split, given, data_dir)
        parts[split] = read(path)
        files.append(path)
    label_set = fixed or sorted({example.label for example in parts["train"]})
    for split, path in zip(named, files, strict=True):
        where = "the labels option" if fixed else (None if split == "train" else "the train file")
        _check_labels(parts[split], path, label_set, where=where)
    return parts, files, label_set


def _check_options(
    *,
    file: Any,
    train: Any,
    dev: Any,
    test: Any,
    format: Any,
    labels: Any,
    split_seed: Any,
    fractions: Any,
    **limits: Any,
) -> None:
    """The options of :func:`read_tabular` that need no file, checked before any file is read."""
    if file is not None and (train or dev or test):
        raise ConfigError("dataset kgreason.Tabular.v1: give either file or train, dev and test, not both")
    if file is None and not (train and dev and test):
        given = [name for name, value in (("train", train), ("dev", dev), ("test", test)) if value]
        raise ConfigError(
            "dataset kgreason.Tabular.v1 needs the options train, dev and test (or file, split with split_seed); "
            f"got {', '.join(given) or 'none'}"
        )
    if format is not None and format not in FORMATS:
        raise ConfigError(
            f"format must be one of {', '.join(FORMATS)}, got {format!r}.{did_you_mean(str(format), list(FORMATS))}"
        )
    for option, value in limits.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{option} must be a positive integer, got {_short(value)}")
    if labels is not None and (
        not isinstance(labels, list | tuple)
        or not labels
        or not all(_scalar(label) for label in labels)
        or len({str(label) for label in labels}) != len(labels)
    ):
        raise ConfigError(f"labels must be a non-empty list of distinct labels, got {_short(labels)}")
    if not isinstance(split_seed, int) or isinstance(split_seed, bool):
        raise ConfigError(f"split_seed must be an integer, got {_short(split_seed)}")
    numbers = isinstance(fractions, list | tuple) and all(
        isinstance(f, int | float) and not isinstance(f, bool) for f in fractions
    )
    if not numbers or len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"fractions must be three positive numbers (train, dev, test) that sum to 1, got {_short(fractions)}"
        )


class _Columns:
    """The column names the options gave, and how a row becomes an :class:`Example`."""

    def __init__(
        self,
        *,
        text: str,
        text_pair: str | None,
        label: str,
        uid: str | None,
        entities: str | None,
        separator: str,
    ) -> None:
        named = {"text_column": text, "label_column": label}
        named.update(
            {k: v for k, v in (("text_pair_column", text_pair), ("id_column", uid)) if v is not None}
        )
        if entities is not None:
            named["entities_column"] = entities
        for option, value in named.items():
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{option} must be a column name, got {value!r}")
        if len(set(named.values())) != len(named):
            raise ConfigError(f"the column options name a column twice: {named}")
        if not isinstance(separator, str) or not separator:
            raise ConfigError(f"entities_separator must be a non-empty string, got {separator!r}")
        self.text, self.text_pair, self.label, self.uid, self.entities = text, text_pair, label, uid, entities
        self.separator = separator
        self.required = list(named.values())

    def example(self, row: dict[str, Any], *, path: Path, line: int) -> Example:
        """The example of one row (all required columns present)."""

        def fail(message: str, expected: str) -> DatasetFormatError:
            return DatasetFormatError(message, path=path, line=line, expected=expected)

        text = row[self.text]
        if not isinstance(text, str) or not text.strip():
            raise fail(
                f"empty or non-text value in column {self.text!r}: {_short(text)}", "a non-empty string"
            )
        pair = None
        if self.text_pair is not None:
            pair = row[self.text_pair]
            if pair is not None and not isinstance(pair, str):
                raise fail(f"non-text value in column {self.text_pair!r}: {_short(pair)}", "a string")
            pair = pair if pair and pair.strip() else None
        label = _scalar(row[self.label])
        if label is None or not label.strip():
            raise fail(
                f"empty or non-scalar label in column {self.label!r}: {_short(row[self.label])}",
                "a string or an integer",
            )
        uid = f"{path.name}:{line}"
        if self.uid is not None:
            uid = _scalar(row[self.uid]) or ""
            if not uid.strip():
                raise fail(
                    f"empty or non-scalar id in column {self.uid!r}: {_short(row[self.uid])}",
                    "a string or an integer",
                )
        metadata: dict[str, Any] = {"line": line}
        if self.entities is not None:
            mentions = self._mentions(row[self.entities], fail)
            if mentions:
                metadata["entities"] = mentions
                metadata[KNOWLEDGE_QUERY] = "; ".join(mentions)
        return Example(text=text, label=label.strip(), text_pair=pair, uid=uid, metadata=metadata)

    def _mentions(self, value: Any, fail: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(self.separator)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise fail(
                f"entity mentions in column {self.entities!r} are {_short(value)}",
                f"a list of strings or a string of mentions separated by {self.separator!r}",
            )
        return [item.strip() for item in value if item.strip()]


def _scalar(value: Any) -> str | None:
    """A string or a (non-boolean) integer as text; anything else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (a hostile file's values stay out of the message)."""
    text = repr(value)  # values come from a line of bounded length
    return text if len(text) <= 60 else text[:57] + "..."


def _names(names: Sequence[str]) -> str:
    """At most ten column names, each cut short, for a message."""
    shown = [name if len(name) <= 40 else name[:37] + "..." for name in list(names)[:10]]
    return ", ".join(shown) + (", ..." if len(names) > 10 else "")


def _suggest(name: str, names: Sequence[str]) -> str:
    """``. Did you mean 'x'?`` over the short names among the first hundred (bounded work on a hostile header)."""
    hint = did_you_mean(name, [n for n in list(names)[:100] if len(n) <= 100])
    return f".{hint}" if hint else ""


def _locate(option: str, given: str, data_dir: str | Path | None) -> Path:
    if not isinstance(given, str | Path) or not str(given):
        raise ConfigError(f"dataset option {option}: expected a file path, got {given!r}")
    path = resolve_data_path(given, data_dir)
    if not path.is_file():
        reason = f"{path}: not a file" if path.exists() else missing_path_message(given, data_dir)
        raise DatasetNotFoundError(f"dataset option {option}: {reason}")
    return path


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        return format
    suffix = path.suffix.lower()
    for name, extensions in FORMATS.items():
        if suffix in extensions:
            return name
    known = ", ".join(ext for extensions in FORMATS.values() for ext in extensions)
    raise ConfigError(
        f"{path}: cannot tell the format from {suffix or 'no extension'!r}; name it with format: jsonl, csv "
        f"or tsv (or use {known})"
    )


def _read(
    path: Path, *, columns: _Columns, format: str | None, limits: tuple[int, int], uids: dict[str, str]
) -> list[Example]:
    """Every example of one file, in file order; ``uids`` (id -> where) catches ids used twice."""
    kind = _format_of(path, format)
    rows = (
        _json_rows(path, limits) if kind == "jsonl" else _csv_rows(path, limits, kind=kind, columns=columns)
    )
    examples = []
    for line, row in rows:
        missing = [name for name in columns.required if name not in row]
        if missing:
            raise DatasetFormatError(
                f"missing column {missing[0]!r}{_suggest(missing[0], list(row))}",
                path=path,
                line=line,
                expected=f"the columns {', '.join(columns.required)}",
            )
        example = columns.example(row, path=path, line=line)
        if columns.uid is not None:
            if example.uid in uids:
                raise DatasetFormatError(
                    f"id {_short(example.uid)} is used twice (first at {uids[example.uid]})",
                    path=path,
                    line=line,
                    expected="a unique id per example",
                )
            uids[str(example.uid)] = f"{path.name}, line {line}"
        examples.append(example)
    if not examples:
        raise DatasetFormatError(
            "empty file: no examples", path=path, expected=f"at least one {kind.upper()} example row"
        )
    return examples


def _check_labels(examples: list[Example], path: Path, labels: Sequence[str], *, where: str | None) -> None:
    """Every label in ``labels`` (``where``: what fixed them; ``None``: nothing to check)."""
    if where is None:
        return
    known = set(labels)
    for example in examples:
        if example.label not in known:
            raise DatasetFormatError(
                f"label {_short(example.label)} does not occur in {where}",
                path=path,
                line=example.metadata["line"],
                expected=f"one of {_names(labels)}",
            )


def _lines(path: Path, limits: tuple[int, int]) -> Iterator[tuple[int, str]]:
    """(line number, decoded line with its line break) of ``path``, each at most ``limits[1]`` bytes."""
    max_lines, max_bytes = limits
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(max_bytes + 2):  # room for a line break after the longest line
            number += 1
            if number > max_lines:
                raise DatasetFormatError(
                    f"more than {max_lines} lines",
                    path=path,
                    line=number,
                    expected="a smaller file, or a larger max_lines",
                )
            body = raw.removesuffix(b"\n").removesuffix(b"\r")
            if len(body) > max_bytes:
                raise DatasetFormatError(
                    f"line longer than {max_bytes} bytes",
                    path=path,
                    line=number,
                    expected="shorter lines, or a larger max_line_bytes",
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DatasetFormatError(
                    f"byte 0x{raw[err.start]:02x} is not UTF-8",
                    path=path,
                    line=number,
                    column=err.start + 1,
                    expected="UTF-8 text",
                ) from None
            yield number, text.removeprefix("\ufeff") if number == 1 else text


def _json_rows(path: Path, limits: tuple[int, int]) -> Iterator[Row]:
    for number, line in _lines(path, limits):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as err:
            detail = getattr(err, "msg", None) or (
                "nested too deeply" if isinstance(err, RecursionError) else str(err)
            )
            raise DatasetFormatError(
                f"not valid JSON ({detail})", path=path, line=number, expected="one JSON object per line"
            ) from None
        if not isinstance(value, dict):
            raise DatasetFormatError(
                f"not a JSON object ({type(value).__name__})",
                path=path,
                line=number,
                expected="one JSON object per line",
            )
        yield number, value


def _csv_rows(path: Path, limits: tuple[int, int], *, kind: str, columns: _Columns) -> list[Row]:
    """The rows of a CSV / TSV file as (first line, header -> cell); blank lines skipped."""
    lines = _lines(path, limits)
    last = [0]  # the number of the last physical line handed to the csv reader

    def feed() -> Iterator[str]:
        for number, text in lines:
            last[0] = number
            yield text

    previous = csv.field_size_limit(limits[1])
    rows: list[Row] = []
    try:
        reader = csv.reader(feed(), delimiter="\t" if kind == "tsv" else ",", strict=True)
        header: list[str] | None = None
        start = 1
        while True:
            start = last[0] + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise DatasetFormatError(
                    f"not valid {kind.upper()} ({err})",
                    path=path,
                    line=last[0] or 1,
                    expected=f"{kind.upper()} rows as csv.writer writes them",
                ) from None
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                repeated = [name for name, n in Counter(header).items() if n > 1]
                if repeated:
                    raise DatasetFormatError(
                        f"column {_short(repeated[0])} appears twice in the header",
                        path=path,
                        line=start,
                        expected="distinct column names",
                    )
                absent = [name for name in columns.required if name not in header]
                if absent:
                    raise DatasetFormatError(
                        f"missing column {absent[0]!r}{_suggest(absent[0], header)} Columns: {_names(header)}",
                        path=path,
                        line=start,
                        expected=f"a header row with the columns {', '.join(columns.required)}",
                    )
                continue
            if len(cells) != len(header):
                raise DatasetFormatError(
                    f"{len(cells)} fields where the header has {len(header)}",
                    path=path,
                    line=start,
                    expected=f"one field per column ({_names(header)})",
                )
            rows.append((start, dict(zip(header, cells, strict=True))))
    finally:
        csv.field_size_limit(previous)
    return rows
