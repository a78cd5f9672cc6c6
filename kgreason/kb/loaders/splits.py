"""Benchmark split folders: ``train`` / ``valid`` / ``test`` triple files (WN18RR, FB15k-237, Kinship, ...).

A folder holds ``train.txt`` and usually ``valid.txt`` and ``test.txt``. Each may also be ``.tsv`` or ``.csv``
and gzipped, and ``dev`` or ``validation`` may stand for ``valid``; when several variants of one split exist
(``train.txt`` beside ``train.txt.gz`` after a ``gunzip -k``) the first in :data:`EXTENSIONS` order is read.
All splits go through one builder, so entity and relation ids are shared across splits.

KG-BERT's text side, in ``text_kgbert/`` (or beside the split files), gives names:

* ``entity2text.txt`` (``key<TAB>text``): the entity label. WordNet files hold ``"lemma, gloss"`` on every
  line; there the label is the lemma and the gloss a description (see :func:`read_kgbert_text`);
* ``entity2textlong.txt``: descriptions only;
* ``relation2text.txt``: relation labels.

Keys in these files that appear in no split are ignored, so entity counts are those of the triples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kgreason.core.errors import KBFormatError
from kgreason.kb.loaders.tsv import progress_bar, read_text_file, read_triples_into
from kgreason.kb.sources import require_regular_file
from kgreason.kb.store import TripleStore, TripleStoreBuilder

#: File stems accepted for each split, in order of preference.
SPLIT_STEMS = {"train": ("train",), "valid": ("valid", "dev", "validation"), "test": ("test",)}
#: Extensions accepted for a split file, in order of preference.
EXTENSIONS = (".txt", ".tsv", ".csv", ".txt.gz", ".tsv.gz", ".csv.gz")
TEXT_FOLDER = "text_kgbert"
#: Share of ``entity2text`` lines that must read ``"name, gloss"`` for the file to be taken as WordNet-style.
GLOSS_SHARE = 0.9


@dataclass(frozen=True)
class KGBertText:
    """Names and descriptions from KG-BERT's text files, keyed by entity / relation key.

    Attributes:
        entity_labels: short entity names (the lemma for ``"lemma, gloss"`` files).
        entity_texts: the full ``entity2text`` text of each entity (``"lemma, gloss"`` kept whole).
        entity_descriptions: glosses, or ``entity2textlong`` texts where that file exists.
        relation_labels: relation names from ``relation2text``.
        glossed: whether ``entity2text`` was read as ``"lemma, gloss"``.
    """

    entity_labels: dict[str, str] = field(default_factory=dict)
    entity_texts: dict[str, str] = field(default_factory=dict)
    entity_descriptions: dict[str, str] = field(default_factory=dict)
    relation_labels: dict[str, str] = field(default_factory=dict)
    glossed: bool = False


def find_split_files(folder: str | Path) -> dict[str, Path]:
    """The file of each split present in ``folder`` (``train`` first), by :data:`SPLIT_STEMS` and :data:`EXTENSIONS`.

    Raises:
        KBFormatError: ``folder`` is not a folder or has no train file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KBFormatError(
            "not a folder", path=folder, expected="a folder with train.txt / valid.txt / test.txt"
        )
    found: dict[str, Path] = {}
    for split, stems in SPLIT_STEMS.items():
        for stem in stems:
            path = next(
                (folder / f"{stem}{ext}" for ext in EXTENSIONS if (folder / f"{stem}{ext}").exists()), None
            )
            if path is not None:
                require_regular_file(path)  # a FIFO would be read forever
                found[split] = path
                break
    if "train" not in found:
        raise KBFormatError(
            "no train split file",
            path=folder,
            expected="train.txt (or train.tsv / train.csv, optionally .gz) with valid and test files beside it",
        )
    return found


def _read_key_text(path: Path, *, encoding: str) -> dict[str, str]:
    """``key<TAB>text`` lines (the first occurrence of a key wins); blank lines are skipped."""
    out: dict[str, str] = {}
    for number, line in enumerate(read_text_file(path, encoding=encoding).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        key, tab, text = line.partition("\t")
        key, text = key.strip(), " ".join(text.split())
        if not tab or not key:
            raise KBFormatError("no tab after the key", path=path, line=number, expected="key<TAB>text")
        out.setdefault(key, text)
    return out


def read_kgbert_text(folder: str | Path, *, encoding: str = "utf-8") -> KGBertText:
    """Read ``entity2text.txt``, ``entity2textlong.txt`` and ``relation2text.txt`` from ``folder`` (each optional).

    ``entity2text`` is taken as ``"lemma, gloss"`` (WordNet) when at least :data:`GLOSS_SHARE` of its lines hold
    ``", "``: the label is the text before the first comma and the rest is the description. Otherwise the
    whole text is the label (Freebase names such as ``"Washington, D.C."`` keep their comma).
    """
    folder = Path(folder)
    texts: dict[str, str] = {}
    labels: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    glossed = False
    if (path := folder / "entity2text.txt").is_file():
        texts = _read_key_text(path, encoding=encoding)
        glossed = bool(texts) and sum(", " in t for t in texts.values()) >= GLOSS_SHARE * len(texts)
        for key, text in texts.items():
            if glossed and ", " in text:
                label, _, gloss = text.partition(", ")
                labels[key] = label.strip()
                if gloss.strip():
                    descriptions[key] = gloss.strip()
            else:
                labels[key] = text
    if (path := folder / "entity2textlong.txt").is_file():
        descriptions.update(_read_key_text(path, encoding=encoding))
    relations = {}
    if (path := folder / "relation2text.txt").is_file():
        relations = _read_key_text(path, encoding=encoding)
    return KGBertText(
        entity_labels=labels,
        entity_texts=texts,
        entity_descriptions=descriptions,
        relation_labels=relations,
        glossed=glossed,
    )


def text_folder(folder: str | Path) -> Path | None:
    """``folder/text_kgbert`` when it exists, else ``folder`` when it holds KG-BERT text files, else ``None``."""
    folder = Path(folder)
    if (folder / TEXT_FOLDER).is_dir():
        return folder / TEXT_FOLDER
    if any((folder / n).is_file() for n in ("entity2text.txt", "relation2text.txt")):
        return folder
    return None


def load_split_folder(
    source: str | Path,
    *,
    name: str | None = None,
    encoding: str = "utf-8",
    progress: bool = True,
    text_dir: str | Path | None = None,
) -> TripleStore:
    """Load a benchmark folder's ``train`` / ``valid`` / ``test`` files into one :class:`TripleStore`.

    Splits are named ``train``, ``valid`` and ``test`` whatever the files are called; labels come from the
    KG-BERT text files when present (see the module docstring), or from ``text_dir`` (a folder of those files,
    e.g. the full KG's ``text_kgbert/`` for one of its subsets).

    Raises:
        KBFormatError: no train file, a malformed line (file and line named), or an empty train file.
    """
    folder = Path(source)
    files = find_split_files(folder)
    builder = TripleStoreBuilder(name=name or folder.resolve().name, source=str(folder))
    bar = progress_bar(
        total=sum(p.stat().st_size for p in files.values()), desc=f"reading {folder.name}", enabled=progress
    )
    try:
        for split, path in files.items():
            count = read_triples_into(builder, path, split=split, encoding=encoding, bar=bar)
            if count == 0 and split == "train":
                raise KBFormatError("no triples", path=path, expected="at least one head, relation, tail row")
    finally:
        if bar is not None:
            bar.close()
    texts_at = text_folder(folder) if text_dir is None else Path(text_dir)
    if text_dir is not None and not texts_at.is_dir():
        raise KBFormatError("no such folder", path=texts_at, expected="a folder of KG-BERT text files")
    if texts_at is not None:
        texts = read_kgbert_text(texts_at, encoding=encoding)
        entity_ids, relation_ids = builder.entity_ids, builder.relation_ids
        for key, label in texts.entity_labels.items():
            if key in entity_ids:  # never let a names file add entities
                builder.add_label(key, label, preferred=True)
        for key, description in texts.entity_descriptions.items():
            if key in entity_ids and description:
                builder.entity_descriptions[entity_ids[key]] = description
        for key, label in texts.relation_labels.items():
            if key in relation_ids and label:
                builder.relation_labels[relation_ids[key]] = label
    return builder.build()
