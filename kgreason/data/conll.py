"""CoNLL-2003 English NER: the four-column CoNLL format (``token POS chunk NER``) read into token examples.

Sentences are separated by blank lines, documents start with a ``-DOCSTART-`` line. Every sentence becomes an
:class:`~kgreason.core.example.Example` with ``tokens``, ``label`` (one tag per token), ``text`` (the tokens
joined by spaces) and ``uid`` ``"train:123"`` (split and sentence index); POS and chunk tags go into
``metadata``. Tags are checked to be IOB2 (each entity starts with ``B-``); IOB1 files (the original release,
where ``I-`` starts an entity) are converted to IOB2 unless ``scheme="iob2"`` asks for an error instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.core.example import Example
from kgreason.data.errors import DatasetFormatError
from kgreason.data.splits import DatasetSplits

DOCSTART = "-DOCSTART-"
SCHEMES = ("auto", "iob1", "iob2")
_TAG = re.compile(r"^(O|[BI]-\S+)$")
CONLL2003_FILES = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
CONLL2003_LICENSE = (
    "Reuters Corpus text (Reuters copyright; research use, the full data needs RCV1 from NIST); "
    "annotations by the CoNLL-2003 shared task"
)
CONLL2003_CITATION = (
    "Erik F. Tjong Kim Sang, Fien De Meulder. Introduction to the CoNLL-2003 Shared Task: "
    "Language-Independent Named Entity Recognition. CoNLL 2003."
)


@dataclass
class ConllFile:
    """One CoNLL file, read.

    Attributes:
        path: the file.
        examples: one per sentence, in file order.
        documents: ``-DOCSTART-`` lines seen.
        tokens: token lines (not counting ``-DOCSTART-``).
        retagged: tags changed by the IOB1 -> IOB2 conversion (0 for an IOB2 file).
    """

    path: Path
    examples: list[Example]
    documents: int
    tokens: int
    retagged: int

    @property
    def sentences(self) -> int:
        return len(self.examples)


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (or broken IOB2) tags as IOB2: an ``I-X`` that does not continue an ``X`` entity becomes ``B-X``."""
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def entity_counts(examples: Sequence[Example]) -> dict[str, int]:
    """Entities per type in IOB2-tagged examples (one per ``B-`` tag), sorted by type."""
    counts = Counter(tag[2:] for example in examples for tag in example.label if tag.startswith("B-"))
    return dict(sorted(counts.items()))


def read_conll(path: str | Path, *, split: str, scheme: str = "auto") -> ConllFile:
    """Read one CoNLL NER file (the NER tag is the last column).

    Args:
        path: the file.
        split: name used in the examples' uids (``"train:0"``).
        scheme: ``auto`` / ``iob1`` (convert IOB1 tags to IOB2) or ``iob2`` (raise on a tag that is not IOB2).

    Raises:
        DatasetFormatError: a line with a different number of columns than the file's first token line, a tag
            that is not ``O`` / ``B-X`` / ``I-X``, bytes that are not UTF-8, or (``scheme="iob2"``) an ``I-X``
            that starts an entity; the message names the file and the line.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DatasetFormatError(f"byte {raw[err.start]:#x} is not UTF-8", path=path, line=line) from None
    examples: list[Example] = []
    documents = tokens_seen = retagged = 0
    width: int | None = None
    width_line = 0
    rows: list[list[str]] = []
    first_line = 0

    def close() -> None:
        nonlocal rows, retagged
        if not rows:
            return
        tags = [row[-1] for row in rows]
        fixed = iob1_to_iob2(tags)
        changed = [j for j, (a, b) in enumerate(zip(tags, fixed, strict=True)) if a != b]
        if changed and scheme == "iob2":
            j = changed[0]
            raise DatasetFormatError(
                f"tag {tags[j]!r} starts an entity (scheme='iob2' was asked for; scheme='auto' converts IOB1)",
                path=path,
                line=first_line + j,
                expected=f"B-{tags[j][2:]} at the start of an entity",
            )
        retagged += len(changed)
        words = [row[0] for row in rows]
        metadata: dict[str, Any] = {"document": documents - 1 if documents else None, "line": first_line}
        if width == 4:
            metadata["pos"] = [row[1] for row in rows]
            metadata["chunk"] = [row[2] for row in rows]
        examples.append(
            Example(
                text=" ".join(words),
                label=fixed,
                tokens=words,
                uid=f"{split}:{len(examples)}",
                metadata=metadata,
            )
        )
        rows = []

    for number, line in enumerate(content.split("\n"), start=1):
        columns = line.split()
        if not columns:
            close()
            continue
        if width is None:
            if len(columns) < 2:
                raise DatasetFormatError(
                    f"{len(columns)} column", path=path, line=number, expected="token ... NER-tag columns"
                )
            width, width_line = len(columns), number
        elif len(columns) != width:
            raise DatasetFormatError(
                f"{len(columns)} columns where line {width_line} has {width}",
                path=path,
                line=number,
                expected=f"{width} space-separated columns (token POS chunk NER)" if width == 4 else None,
            )
        if columns[0] == DOCSTART:
            close()
            documents += 1
            continue
        if not _TAG.match(columns[-1]):
            raise DatasetFormatError(
                f"NER tag {columns[-1]!r} in the last column",
                path=path,
                line=number,
                expected="O, B-TYPE or I-TYPE",
            )
        if not rows:
            first_line = number
        rows.append(columns)
        tokens_seen += 1
    close()
    return ConllFile(path=path, examples=examples, documents=documents, tokens=tokens_seen, retagged=retagged)


def read_conll2003(*, data_dir: str | Path | None = None, scheme: str = "auto") -> DatasetSplits:
    """CoNLL-2003 English NER from ``conll2003/{train,valid,test}.txt`` in the data folder.

    The label set is the sorted tags of the train file; a dev / test tag outside it is an error.

    Args:
        data_dir: the data folder (default: ``$KGREASON_DATA``, else ``../shared/data``), or the ``conll2003``
            folder itself.
        scheme: see :func:`read_conll`.
    """
    from kgreason.data.readers import locate_dataset

    folder = locate_dataset("conll2003", data_dir=data_dir, required=list(CONLL2003_FILES.values()))
    files = {
        split: read_conll(folder / name, split=split, scheme=scheme)
        for split, name in CONLL2003_FILES.items()
    }
    labels = sorted({tag for example in files["train"].examples for tag in example.label})
    known = set(labels)
    for split in ("dev", "test"):
        for example in files[split].examples:
            for j, tag in enumerate(example.label):
                if tag not in known:
                    raise DatasetFormatError(
                        f"tag {tag!r} does not occur in the train file",
                        path=files[split].path,
                        line=example.metadata["line"] + j,
                        expected=f"one of {labels}",
                    )
    retagged = sum(f.retagged for f in files.values())
    info = {
        "splits": {
            split: {
                "file": f.path.name,
                "documents": f.documents,
                "sentences": f.sentences,
                "tokens": f.tokens,
                "entities": entity_counts(f.examples),
            }
            for split, f in files.items()
        },
        "tag_scheme": "IOB2" if not retagged else f"IOB1, converted to IOB2 ({retagged} tags changed)",
        "license": CONLL2003_LICENSE,
        "citation": CONLL2003_CITATION,
    }
    return DatasetSplits(
        name="conll2003",
        train=files["train"].examples,
        dev=files["dev"].examples,
        test=files["test"].examples,
        labels=labels,
        files=[f.path for f in files.values()],
        options={"scheme": scheme},
        info=info,
    )
