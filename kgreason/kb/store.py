"""TripleStore: kgreason's own knowledge base, with integer ids, CSR adjacency and a memory-mappable format.

On disk a store is a folder::

    manifest.json          format, counts per split, sha256 and size of every file, key kind, source
    entities.txt           one entity key per line (line i = entity id i)
    relations.txt          one relation key per line
    triples.<split>.npy    (n, 3) int64 (head, relation, tail), opened with numpy memory mapping
    names.jsonl            labels, aliases and relation templates (only for ids that have them)
    annotations.jsonl      RDF label triples kept verbatim so RDF -> store -> RDF loses nothing

Every file is written to a temporary folder that is renamed into place (:func:`kgreason.core.atomic.atomic_directory`
with a private backup), so a crash never leaves half a store.
:meth:`TripleStore.save` replaces only an empty folder or a kgreason store holding nothing but its own files
(anything else needs ``force=True``); temporaries of a killed writer are swept by the next save.
:meth:`TripleStore.load` checks the manifest, that every file is a regular file inside the folder, sizes and (by
default) sha256s, dtypes and id ranges, and raises :class:`~kgreason.core.errors.KBFormatError` naming the file.
Hashing costs a fraction of loading (a 5M-triple store: 0.13 s of sha256 against 0.4-0.8 s to load), so it is
on by default; ``verify=False`` skips it (sizes are still checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from array import array
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgreason.core.atomic import atomic_directory, process_alive, stale_temporary_pid
from kgreason.core.errors import KBFormatError, KGReasonError
from kgreason.kb.base import KnowledgeBase
from kgreason.kb.sources import file_kind

FORMAT_NAME = "kgreason.TripleStore"
FORMAT_VERSION = 1
#: The folder inside a store where retrieval saves its fact indexes (``kgreason.retrieval.facts``).
FACT_INDEX_DIR = "fact_index"
MANIFEST = "manifest.json"

#: Entity keys are N-Triples terms (``<iri>``, ``_:b0``, ``"literal"@en``) for RDF sources, plain strings else.
KEY_KINDS = ("plain", "ntriples")
#: Names of the files a store folder may hold (``triples.<split>.npy`` per split besides).
STORE_FILES = frozenset({MANIFEST, "entities.txt", "relations.txt", "names.jsonl", "annotations.jsonl"})
_TRIPLES_FILE = re.compile(r"triples\.[^/\\\x00]+\.npy")
_SHA256 = re.compile(r"[0-9a-f]{64}")
EXPECTED_TRIPLES = "an (n, 3) int64 NumPy array of (head, relation, tail) ids, as TripleStore.save writes"
EXPECTED_NAMES = '{"entity": id, "label": ..., "aliases": [...], "description": ...} or {"relation": id, ...}'
EXPECTED_ANNOTATION = "[entity id, predicate, literal]"


class StoreTargetError(KGReasonError, FileExistsError):
    """:meth:`TripleStore.save` refuses to replace something that is not a kgreason store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _IdRangeError(ValueError):
    """An id out of range in one split (the store's loader names the file)."""

    def __init__(self, split: str, problem: str) -> None:
        super().__init__(f"split {split!r}: {problem}")
        self.split = split
        self.problem = problem


def sha256_file(path: Path, *, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")


def _read_utf8(path: Path, *, shown: Path, expected: str) -> str:
    """The text of ``path``; bytes that are not UTF-8 are a :class:`KBFormatError` naming line and offset."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise KBFormatError(
            f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})",
            path=shown,
            line=data.count(b"\n", 0, err.start) + 1,
            expected=expected,
        ) from None


def _read_lines(path: Path, *, shown: Path | None = None) -> list[str]:
    text = _read_utf8(path, shown=shown or path, expected="one UTF-8 key per line")
    if not text:
        return []
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


def id_range_problem(rows: np.ndarray, *, num_entities: int, num_relations: int) -> str | None:
    """What is wrong with the ids of ``(n, 3)`` triples (``None`` when every id is in range)."""
    if rows.shape[0] == 0:
        return None
    lo, hi = rows.min(axis=0), rows.max(axis=0)  # (3,) each
    for column, kind, bound in (
        (0, "entity", num_entities),
        (2, "entity", num_entities),
        (1, "relation", num_relations),
    ):
        for value in (int(lo[column]), int(hi[column])):
            if not 0 <= value < bound:
                return f"{kind} id {value} out of range [0, {bound})"
    return None


class TripleStore(KnowledgeBase):
    """An in-memory (or memory-mapped) knowledge base with dense integer ids.

    Args:
        name: display name.
        entity_keys: key of each entity, by id.
        relation_keys: key of each relation, by id.
        split_triples: ``(n, 3)`` int64 arrays per split name, in split order.
        entity_labels: preferred names (ids without one fall back to a readable key).
        entity_aliases: other names per entity id.
        relation_labels: readable relation names (e.g. from KG-BERT's relation2text).
        relation_templates: sentence templates per relation id with ``{head}`` and ``{tail}``.
        entity_descriptions: longer texts per entity id (WordNet glosses, abstracts).
        annotations: ``(entity id, predicate key, literal key)`` label triples kept verbatim from RDF.
        key_kind: ``"ntriples"`` when keys are N-Triples terms, else ``"plain"``.
        duplicates_dropped: duplicate triples dropped per split while loading.
        source: where the KB came from (path or description).
    """

    def __init__(
        self,
        *,
        name: str,
        entity_keys: Sequence[str],
        relation_keys: Sequence[str],
        split_triples: Mapping[str, np.ndarray],
        entity_labels: Mapping[int, str] | None = None,
        entity_aliases: Mapping[int, Sequence[str]] | None = None,
        relation_labels: Mapping[int, str] | None = None,
        relation_templates: Mapping[int, str] | None = None,
        entity_descriptions: Mapping[int, str] | None = None,
        annotations: Sequence[tuple[int, str, str]] | None = None,
        key_kind: str = "plain",
        duplicates_dropped: Mapping[str, int] | None = None,
        source: str | None = None,
    ) -> None:
        if key_kind not in KEY_KINDS:
            raise ValueError(f"key_kind must be one of {KEY_KINDS}, got {key_kind!r}")
        if not split_triples:
            raise ValueError("a TripleStore needs at least one split (use 'all' for a KB without splits)")
        self.name = name
        self.entity_keys = list(entity_keys)
        self.relation_keys = list(relation_keys)
        self._splits: dict[str, np.ndarray] = {}
        for split, rows in split_triples.items():
            rows = np.asarray(rows)
            if rows.ndim != 2 or rows.shape[1] != 3:
                raise ValueError(f"split {split!r}: triples must have shape (n, 3), got {rows.shape}")
            self._splits[split] = rows
        self.entity_labels = dict(entity_labels or {})
        self.entity_aliases_map = {int(k): tuple(v) for k, v in (entity_aliases or {}).items() if v}
        self.relation_labels = dict(relation_labels or {})
        self.relation_templates = dict(relation_templates or {})
        self.entity_descriptions = dict(entity_descriptions or {})
        self.annotations = list(annotations or [])
        self.key_kind = key_kind
        self._duplicates = {k: int(v) for k, v in (duplicates_dropped or {}).items() if v}
        self.source = source
        self._check_ids()

    def _check_ids(self) -> None:
        for split, rows in self._splits.items():
            problem = id_range_problem(rows, num_entities=self.num_entities, num_relations=self.num_relations)
            if problem is not None:
                raise _IdRangeError(split, problem)

    # ------------------------------------------------------------------ contract
    @property
    def num_entities(self) -> int:
        return len(self.entity_keys)

    @property
    def num_relations(self) -> int:
        return len(self.relation_keys)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def entity_key(self, entity: int) -> str:
        return self.entity_keys[entity]

    def relation_key(self, relation: int) -> str:
        return self.relation_keys[relation]

    def entity_label(self, entity: int) -> str:
        label = self.entity_labels.get(entity)
        return label if label is not None else super().entity_label(entity)

    def has_label(self, entity: int) -> bool:
        return entity in self.entity_labels

    def entity_description(self, entity: int) -> str | None:
        return self.entity_descriptions.get(entity)

    def entity_aliases(self, entity: int) -> tuple[str, ...]:
        return self.entity_aliases_map.get(entity, ())

    def relation_label(self, relation: int) -> str:
        label = self.relation_labels.get(relation)
        return label if label is not None else super().relation_label(relation)

    def triple_array(self, split: str | None = None) -> np.ndarray:
        """(n, 3) int64 numpy array of one split, or of all splits concatenated in split order."""
        if split is None:
            return self._all_triples
        try:
            return self._splits[split]
        except KeyError:
            raise KeyError(f"{self.name} has no split {split!r}; splits: {', '.join(self._splits)}") from None

    @cached_property
    def _all_triples(self) -> np.ndarray:
        if len(self._splits) == 1:
            return next(iter(self._splits.values()))
        return np.concatenate(list(self._splits.values()), axis=0)

    def triples(self, split: str | None = None) -> torch.Tensor:
        return torch.from_numpy(self.triple_array(split))

    @cached_property
    def _entity_index(self) -> dict[str, int]:
        return dict(zip(self.entity_keys, range(len(self.entity_keys)), strict=True))

    @cached_property
    def _relation_index(self) -> dict[str, int]:
        return dict(zip(self.relation_keys, range(len(self.relation_keys)), strict=True))

    def duplicates_dropped(self) -> dict[str, int]:
        return dict(self._duplicates)

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> TripleStore:
        """Copy any :class:`KnowledgeBase` (a plug-in, say) into a store."""
        if isinstance(kb, TripleStore):
            return kb
        splits = {s: kb.triples(None if s == "all" else s).numpy().astype(np.int64) for s in kb.splits}
        labels, aliases, descriptions = {}, {}, {}
        for i in range(kb.num_entities):
            if kb.has_label(i):
                labels[i] = kb.entity_label(i)
            if found := kb.entity_aliases(i):
                aliases[i] = found
            if text := kb.entity_description(i):
                descriptions[i] = text
        return cls(
            name=kb.name,
            entity_keys=[kb.entity_key(i) for i in range(kb.num_entities)],
            relation_keys=[kb.relation_key(r) for r in range(kb.num_relations)],
            split_triples=splits,
            entity_labels=labels,
            entity_aliases=aliases,
            entity_descriptions=descriptions,
            relation_labels={r: kb.relation_label(r) for r in range(kb.num_relations)},
            duplicates_dropped=kb.duplicates_dropped(),
            source=f"{type(kb).__module__}.{type(kb).__qualname__}",
        )

    def with_relation_order(self, keys: Sequence[str]) -> TripleStore:
        """This store with relation ids renumbered: ``keys`` first, in their order (ids shared with another
        graph, e.g. an inductive split's training graph), then this store's other relations as they were.

        Every one of ``keys`` gets an id even where this store has no triple of it, so ids line up exactly.
        """
        order = list(dict.fromkeys(keys))
        order += [k for k in self.relation_keys if k not in set(order)]
        new_id = {key: i for i, key in enumerate(order)}
        remap = np.array([new_id[k] for k in self.relation_keys], dtype=np.int64)  # old id -> new id
        splits = {}
        for split, rows in self._splits.items():
            rows = np.array(rows, dtype=np.int64)  # (n, 3), a copy (the store may be memory-mapped)
            rows[:, 1] = remap[rows[:, 1]]
            splits[split] = rows
        return TripleStore(
            name=self.name,
            entity_keys=self.entity_keys,
            relation_keys=order,
            split_triples=splits,
            entity_labels=self.entity_labels,
            entity_aliases=self.entity_aliases_map,
            relation_labels={int(remap[r]): text for r, text in self.relation_labels.items()},
            relation_templates={int(remap[r]): text for r, text in self.relation_templates.items()},
            entity_descriptions=self.entity_descriptions,
            annotations=self.annotations,
            key_kind=self.key_kind,
            duplicates_dropped=self._duplicates,
            source=self.source,
        )

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path, *, force: bool = False) -> Path:
        """Write the store to ``directory`` atomically (a temporary folder renamed into place).

        An existing ``directory`` is replaced only when it is empty or a kgreason store that holds nothing but
        its own files; a file, a link or any other folder raises :class:`StoreTargetError` unless ``force``
        (then it is replaced whole; a link is replaced, never what it points to).
        """
        target = Path(directory)
        for key in self.entity_keys + self.relation_keys:
            if "\n" in key or "\r" in key:
                raise ValueError(f"keys may not contain line breaks: {key!r}")
        for split in self._splits:
            if not _is_plain_name(f"triples.{split}.npy"):
                raise ValueError(f"split name {split!r} cannot be part of a file name")
        if not force:
            _check_replaceable(target)
        sweep_stale_store_temporaries(target)
        # A private backup: a user's ``.<name>.previous`` is never deleted, and concurrent saves never collide.
        # No fsync: load checks every size and sha256, so a file a power cut lost is reported, not read.
        with atomic_directory(target, backup="private", fsync=False) as tmp:
            self._write_files(tmp)
        return target

    def _write_files(self, folder: Path) -> None:
        """Write every file of the store, the manifest last, into the (empty) ``folder``."""
        _write_lines(folder / "entities.txt", self.entity_keys)
        _write_lines(folder / "relations.txt", self.relation_keys)
        splits: dict[str, dict[str, Any]] = {}
        for split, rows in self._splits.items():
            fname = f"triples.{split}.npy"
            np.save(folder / fname, np.ascontiguousarray(rows, dtype=np.int64))
            splits[split] = {"file": fname, "count": int(rows.shape[0])}
        with open(folder / "names.jsonl", "w", encoding="utf-8") as handle:
            for record in self._name_records():
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if self.annotations:
            with open(folder / "annotations.jsonl", "w", encoding="utf-8") as handle:
                for entity, predicate, literal in self.annotations:
                    handle.write(json.dumps([entity, predicate, literal], ensure_ascii=False) + "\n")
        files: dict[str, str] = {}
        sizes: dict[str, int] = {}
        for path in sorted(folder.iterdir()):
            files[path.name] = sha256_file(path)
            sizes[path.name] = path.stat().st_size
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "key_kind": self.key_kind,
            "num_entities": self.num_entities,
            "num_relations": self.num_relations,
            "splits": splits,
            "duplicates_dropped": self._duplicates,
            "source": self.source,
            "sha256": files,
            "bytes": sizes,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    def _name_records(self) -> Iterable[dict[str, Any]]:
        """The ``names.jsonl`` records: entities with a label, aliases or description, then relations."""
        described = set(self.entity_descriptions)
        for i in sorted(set(self.entity_labels) | set(self.entity_aliases_map) | described):
            record: dict[str, Any] = {"entity": i, "label": self.entity_labels.get(i)}
            if i in self.entity_aliases_map:
                record["aliases"] = list(self.entity_aliases_map[i])
            if i in described:
                record["description"] = self.entity_descriptions[i]
            yield record
        for r in sorted(set(self.relation_labels) | set(self.relation_templates)):
            record = {"relation": r, "label": self.relation_labels.get(r)}
            if r in self.relation_templates:
                record["template"] = self.relation_templates[r]
            yield record

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True, verify: bool = True) -> TripleStore:
        """Open a store folder; triples are memory-mapped unless ``mmap=False``.

        Every file must be named in the manifest, be a regular file inside the folder and have the size the
        manifest gives; ``verify`` (the default) also checks each file's sha256. Triples must be int64 with ids
        in range. Any problem raises :class:`KBFormatError` naming the file and what was expected.
        """
        folder = Path(directory)
        manifest_path = folder / MANIFEST
        if not os.path.lexists(manifest_path):
            raise KBFormatError(
                "not a kgreason store: manifest.json is missing",
                path=folder,
                expected="a folder made by kgreason",
            )
        root = folder.resolve()
        manifest = _read_manifest(_member(root, folder, MANIFEST), manifest_path)
        paths = _checked_files(root, folder, manifest, verify=verify)
        entity_keys, relation_keys = _read_keys(folder, paths, manifest)
        n_ent, n_rel = len(entity_keys), len(relation_keys)
        splits = {
            split: _read_triples(
                paths[info["file"]], shown=folder / info["file"], count=info["count"], mmap=mmap
            )
            for split, info in manifest["splits"].items()
        }
        labels, aliases, descriptions, rel_labels, templates = _read_names(
            paths.get("names.jsonl"), shown=folder / "names.jsonl", num_entities=n_ent, num_relations=n_rel
        )
        annotations = _read_annotations(
            paths.get("annotations.jsonl"), shown=folder / "annotations.jsonl", num_entities=n_ent
        )
        try:
            store = cls(
                name=manifest.get("name") or folder.name,
                entity_keys=entity_keys,
                relation_keys=relation_keys,
                split_triples=splits,
                entity_labels=labels,
                entity_aliases=aliases,
                relation_labels=rel_labels,
                relation_templates=templates,
                entity_descriptions=descriptions,
                annotations=annotations,
                key_kind=manifest.get("key_kind", "plain"),
                duplicates_dropped=manifest.get("duplicates_dropped"),
                source=manifest.get("source"),
            )
        except _IdRangeError as err:
            raise KBFormatError(
                err.problem,
                path=folder / manifest["splits"][err.split]["file"],
                expected="ids below the entity and relation counts of manifest.json",
            ) from None
        store.directory = folder
        return store

    directory: Path | None = None


# ---------------------------------------------------------------------------------------------- reading
def _is_plain_name(name: Any) -> bool:
    """A file name without folders (no ``/``, ``\\``, ``..``, NUL), as a store's manifest may name."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\x00")
        and name == name.strip()
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_id(value: Any, bound: int) -> bool:
    return _is_count(value) and value < bound


def _read_manifest(path: Path, shown: Path) -> dict[str, Any]:
    """The checked manifest: a JSON object with the fields :meth:`TripleStore.save` writes."""
    text = _read_utf8(path, shown=shown, expected="a UTF-8 JSON object")
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise KBFormatError(
            err.msg,
            path=shown,
            line=err.lineno,
            column=err.colno,
            expected="JSON (a kgreason store manifest)",
        ) from None
    except RecursionError:
        raise KBFormatError("nested too deeply", path=shown, expected="a kgreason store manifest") from None

    def bad(message: str, expected: str) -> KBFormatError:
        return KBFormatError(message, path=shown, expected=expected)

    if not isinstance(manifest, dict):
        raise bad(
            f"not a kgreason store manifest: the top level is a JSON {type(manifest).__name__}",
            "a JSON object with format, splits, sha256, ...",
        )
    if manifest.get("format") != FORMAT_NAME or manifest.get("format_version") != FORMAT_VERSION:
        raise bad(
            f"unsupported store format {manifest.get('format')!r} v{manifest.get('format_version')}",
            f"{FORMAT_NAME} v{FORMAT_VERSION}",
        )
    for key in ("num_entities", "num_relations"):
        if not _is_count(manifest.get(key)):
            raise bad(f"{key} is {manifest.get(key)!r}", f"{key}: a count (an integer >= 0)")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise bad(f"splits is {splits!r}", 'splits: {"<split>": {"file": "triples.<split>.npy", "count": n}}')
    for split, info in splits.items():
        if not isinstance(info, dict) or not _is_count(info.get("count")) or "file" not in info:
            raise bad(f"split {split!r} is {info!r}", f'{{"file": "triples.{split}.npy", "count": n}}')
        if not _is_plain_name(info["file"]):
            raise bad(f"file name {info['file']!r} of split {split!r} is not a plain file name", _PLAIN)
    files = manifest.get("sha256")
    if not isinstance(files, dict):
        raise bad(f"sha256 is {type(files).__name__}", 'sha256: {"<file name>": "<64 hex digits>"}')
    for name, digest in files.items():
        if not _is_plain_name(name):
            raise bad(f"file name {name!r} is not a plain file name", _PLAIN)
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise bad(f"sha256 of {name} is {digest!r}", "64 lower-case hex digits")
    sizes = manifest.get("bytes", {})
    if not isinstance(sizes, dict) or not all(name in files and _is_count(n) for name, n in sizes.items()):
        raise bad(f"bytes is {sizes!r}", 'bytes: {"<file named in sha256>": size}')
    if manifest.get("key_kind", "plain") not in KEY_KINDS:
        raise bad(f"key_kind is {manifest.get('key_kind')!r}", f"one of {', '.join(KEY_KINDS)}")
    for key in ("name", "source"):
        if not isinstance(manifest.get(key), str | None):
            raise bad(f"{key} is {manifest.get(key)!r}", f"{key}: a string or null")
    dropped = manifest.get("duplicates_dropped") or {}
    if not isinstance(dropped, dict) or not all(_is_count(n) for n in dropped.values()):
        raise bad(f"duplicates_dropped is {dropped!r}", 'duplicates_dropped: {"<split>": count}')
    return manifest


_PLAIN = "a file name inside the store folder, such as triples.all.npy (no folders, no '..')"


def _member(root: Path, folder: Path, name: str) -> Path:
    """The path of the store file ``name``: a regular file inside the folder (a link may point within it)."""
    shown = folder / name
    try:
        resolved = (root / name).resolve(strict=True)
    except FileNotFoundError:
        listed = "" if name == MANIFEST else " (named in manifest.json)"
        raise KBFormatError(
            f"{name} is missing{listed}", path=folder, expected="every file of the store"
        ) from None
    except (OSError, RuntimeError) as err:  # a link loop
        raise KBFormatError(f"cannot follow the link ({err})", path=shown, expected=_INSIDE) from None
    if not resolved.is_relative_to(root):
        raise KBFormatError(
            f"a symbolic link to {resolved}, outside the store folder", path=shown, expected=_INSIDE
        )
    mode = resolved.stat().st_mode
    if not stat.S_ISREG(mode):
        raise KBFormatError(f"not a regular file ({file_kind(mode)})", path=shown, expected=_INSIDE)
    return resolved


_INSIDE = "a regular file inside the store folder"


def _checked_files(root: Path, folder: Path, manifest: dict[str, Any], *, verify: bool) -> dict[str, Path]:
    """The path of every file the manifest lists, each a regular file inside the folder with the listed size
    (and, with ``verify``, sha256); every file the store needs must be listed."""
    listed: dict[str, str] = manifest["sha256"]
    sizes: dict[str, int] = manifest.get("bytes") or {}
    wanted = ["entities.txt", "relations.txt", *(info["file"] for info in manifest["splits"].values())]
    for optional in ("names.jsonl", "annotations.jsonl"):
        if optional in listed or os.path.lexists(folder / optional):
            wanted.append(optional)
    for name in wanted:
        if name not in listed:
            raise KBFormatError(
                f"{name} is not listed in manifest.json",
                path=folder / MANIFEST,
                expected="a sha256 entry for every file of the store",
            )
    paths: dict[str, Path] = {}
    for name, digest in listed.items():
        path = paths[name] = _member(root, folder, name)
        size = path.stat().st_size
        if name in sizes and size != sizes[name]:
            raise KBFormatError(
                f"has {size:,} bytes, manifest.json says {sizes[name]:,} (changed or damaged since it was "
                "written)",
                path=folder / name,
                expected="the file as TripleStore.save wrote it",
            )
        if verify and sha256_file(path) != digest:
            raise KBFormatError(
                "checksum mismatch: its sha256 differs from the one in manifest.json (changed or damaged "
                "since it was written)",
                path=folder / name,
                expected=f"sha256 {digest[:16]}...",
            )
    return paths


def _read_keys(folder: Path, paths: dict[str, Path], manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The entity and relation keys, as many as the manifest counts."""
    entity_keys = _read_lines(paths["entities.txt"], shown=folder / "entities.txt")
    relation_keys = _read_lines(paths["relations.txt"], shown=folder / "relations.txt")
    if len(entity_keys) != manifest["num_entities"] or len(relation_keys) != manifest["num_relations"]:
        raise KBFormatError(
            f"entities.txt/relations.txt hold {len(entity_keys)}/{len(relation_keys)} keys, the manifest "
            f"says {manifest['num_entities']}/{manifest['num_relations']}",
            path=folder,
            expected="one key per line, as many as manifest.json counts",
        )
    return entity_keys, relation_keys


def _read_triples(path: Path, *, shown: Path, count: int, mmap: bool) -> np.ndarray:
    try:
        rows = np.load(path, mmap_mode=("c" if mmap else None) if count else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise KBFormatError(
            f"not a readable NumPy array ({err})", path=shown, expected=EXPECTED_TRIPLES
        ) from None
    if not isinstance(rows, np.ndarray):  # an .npz archive
        if hasattr(rows, "close"):
            rows.close()
        raise KBFormatError("a .npz archive, not an array", path=shown, expected=EXPECTED_TRIPLES)
    if rows.dtype != np.int64:
        raise KBFormatError(f"holds {rows.dtype} values", path=shown, expected=EXPECTED_TRIPLES)
    if rows.shape != (count, 3):
        raise KBFormatError(
            f"has shape {rows.shape}, manifest.json says ({count}, 3)", path=shown, expected=EXPECTED_TRIPLES
        )
    return rows


def _jsonl(path: Path, *, shown: Path) -> Iterable[tuple[Path, int, Any]]:
    """``(shown path, line number, value)`` of every non-blank line of a JSON-lines file."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise KBFormatError(
                    f"not UTF-8 text (byte 0x{raw[err.start]:02x})",
                    path=shown,
                    line=number,
                    column=err.start + 1,
                    expected="UTF-8 JSON lines",
                ) from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise KBFormatError(
                    f"not JSON ({err.msg})",
                    path=shown,
                    line=number,
                    column=err.colno,
                    expected="one JSON value per line",
                ) from None
            except RecursionError:
                raise KBFormatError(
                    "nested too deeply", path=shown, line=number, expected="one JSON value per line"
                ) from None
            yield shown, number, value


def _read_name(
    record: Any,
    *,
    shown: Path,
    line: int,
    num_entities: int,
    num_relations: int,
    out: tuple[dict, dict, dict, dict, dict],
) -> None:
    """File one ``names.jsonl`` record into (labels, aliases, descriptions, relation labels, templates)."""
    labels, aliases, descriptions, rel_labels, templates = out

    def bad(message: str) -> KBFormatError:
        return KBFormatError(message, path=shown, line=line, expected=EXPECTED_NAMES)

    if not isinstance(record, dict):
        raise bad(f"not a JSON object: {json.dumps(record)[:80]}")
    kind, bound = ("entity", num_entities) if "entity" in record else ("relation", num_relations)
    if kind not in record:
        raise bad("has neither 'entity' nor 'relation'")
    index = record[kind]
    if not _is_id(index, bound):
        raise bad(f"{kind} id {index!r} out of range [0, {bound})")
    text_fields = ("label", "description") if kind == "entity" else ("label", "template")
    for key in text_fields:
        if not isinstance(record.get(key), str | None):
            raise bad(f"{key} is {record[key]!r}, not a string")
    if kind == "relation":
        if record.get("label") is not None:
            rel_labels[index] = record["label"]
        if record.get("template"):
            templates[index] = record["template"]
        return
    found = record.get("aliases")
    if found is not None and not (isinstance(found, list) and all(isinstance(a, str) for a in found)):
        raise bad(f"aliases is {found!r}, not a list of strings")
    if record.get("label") is not None:
        labels[index] = record["label"]
    if found:
        aliases[index] = tuple(found)
    if record.get("description"):
        descriptions[index] = record["description"]


def _read_names(
    path: Path | None, *, shown: Path, num_entities: int, num_relations: int
) -> tuple[dict, dict, dict, dict, dict]:
    """(labels, aliases, descriptions, relation labels, templates) from ``names.jsonl`` (empty without one)."""
    out: tuple[dict, dict, dict, dict, dict] = ({}, {}, {}, {}, {})
    if path is not None:
        for shown_path, number, record in _jsonl(path, shown=shown):
            _read_name(
                record,
                shown=shown_path,
                line=number,
                num_entities=num_entities,
                num_relations=num_relations,
                out=out,
            )
    return out


def _read_annotations(path: Path | None, *, shown: Path, num_entities: int) -> list[tuple[int, str, str]]:
    """The ``[entity id, predicate, literal]`` rows of ``annotations.jsonl`` (none without one)."""
    annotations: list[tuple[int, str, str]] = []
    if path is None:
        return annotations
    for shown_path, number, record in _jsonl(path, shown=shown):
        if not (
            isinstance(record, list)
            and len(record) == 3
            and _is_id(record[0], num_entities)
            and isinstance(record[1], str)
            and isinstance(record[2], str)
        ):
            raise KBFormatError(
                f"not an annotation: {json.dumps(record)[:80]}",
                path=shown_path,
                line=number,
                expected=f"{EXPECTED_ANNOTATION} with an entity id below {num_entities}",
            )
        annotations.append((record[0], record[1], record[2]))
    return annotations


# ---------------------------------------------------------------------------------------------- writing
def _refuse(target: Path, what: str) -> StoreTargetError:
    return StoreTargetError(
        f"{target}: {what}; refusing to replace it (pass --force, or force=True, to replace it and everything "
        "in it, or choose another path)"
    )


def _own_fact_index(entry: os.DirEntry) -> bool:
    """Whether ``entry`` is the fact-index folder that retrieval keeps inside a store (the store's own)."""
    return entry.name == FACT_INDEX_DIR and entry.is_dir(follow_symlinks=False)


def _store_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a kgreason store holding only its own files (``None`` when it is one)."""
    try:
        if not stat.S_ISREG(os.lstat(folder / MANIFEST).st_mode):  # a FIFO would block the read
            return "a folder that is not a kgreason store (its manifest.json is not a regular file)"
        manifest = json.loads((folder / MANIFEST).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return "a folder that is not a kgreason store (no manifest.json)"
    except (OSError, ValueError, RecursionError):
        return "a folder that is not a kgreason store (its manifest.json cannot be read)"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        return "a folder that is not a kgreason store (its manifest.json is not a store manifest)"
    files = manifest.get("sha256")
    ours = {MANIFEST, *files} if isinstance(files, dict) else {MANIFEST}
    foreign = sorted(
        entry.name
        for entry in os.scandir(folder)
        if not _own_fact_index(entry) and (entry.name not in ours or entry.is_dir(follow_symlinks=False))
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return f"a kgreason store that also holds files it did not write ({shown})"
    return None


def _check_replaceable(target: Path) -> None:
    """Raise :class:`StoreTargetError` unless ``target`` is absent, an empty folder or one of our stores."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise _refuse(target, "is a symbolic link")
    if not stat.S_ISDIR(mode):
        raise _refuse(target, "is a file, not a kgreason store folder")
    if not any(os.scandir(target)):
        return
    if (problem := _store_problem(target)) is not None:
        raise _refuse(target, f"is {problem}")


def _looks_like_store_parts(folder: str) -> bool:
    """Whether every entry of ``folder`` is a regular file with a name a store file has."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return all(
        _own_fact_index(entry)
        or (
            entry.is_file(follow_symlinks=False)
            and (entry.name in STORE_FILES or _TRIPLES_FILE.fullmatch(entry.name) is not None)
        )
        for entry in entries
    )


def sweep_stale_store_temporaries(target: str | Path) -> list[Path]:
    """Remove the temporary and backup folders of ``target`` that killed :meth:`TripleStore.save` calls left.

    Only folders named like our temporaries of this target (``.<name>.<pid>.<random>.tmp`` / ``.old``, and the
    older ``.<name>.old-<pid>``), whose process has ended and that hold nothing but store files, are removed.
    """
    target = Path(target)
    legacy = re.compile(rf"\.{re.escape(target.name)}\.old-(\d+)")
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        pid = stale_temporary_pid(target, entry.name) or stale_temporary_pid(
            target, entry.name, suffix=".old"
        )
        if pid is None and (match := legacy.fullmatch(entry.name)):
            pid = int(match.group(1))
        if pid is None or process_alive(pid) or not entry.is_dir(follow_symlinks=False):
            continue
        if _looks_like_store_parts(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def intern_key(ids: dict[str, int], key: str) -> int:
    """The id of ``key`` in ``ids``, giving a new key the next id (``len(ids)``): dense ids in first-seen order."""
    found = ids.get(key)
    if found is None:
        found = ids[key] = len(ids)
    return found


class TripleStoreBuilder:
    """Interns keys to dense ids and collects triples per split; every loader builds through it.

    Nothing is visible until :meth:`build`, so a loader that fails half-way leaves nothing behind.
    """

    def __init__(self, *, name: str, key_kind: str = "plain", source: str | None = None) -> None:
        self.name = name
        self.key_kind = key_kind
        self.source = source
        self.entity_ids: dict[str, int] = {}
        self.relation_ids: dict[str, int] = {}
        self._rows: dict[str, array] = {}
        self.entity_labels: dict[int, str] = {}
        self.entity_aliases: dict[int, list[str]] = {}
        self.relation_labels: dict[int, str] = {}
        self.relation_templates: dict[int, str] = {}
        self.entity_descriptions: dict[int, str] = {}
        self.annotations: list[tuple[int, str, str]] = []

    def entity(self, key: str) -> int:
        """Id of the entity ``key``, allocating the next id for a new key."""
        return intern_key(self.entity_ids, key)

    def relation(self, key: str) -> int:
        """Id of the relation ``key``, allocating the next id for a new key."""
        return intern_key(self.relation_ids, key)

    def split_rows(self, split: str) -> array:
        """The flat ``array('q')`` of ``h, r, t, h, r, t, ...`` ids of ``split`` (created on first use)."""
        rows = self._rows.get(split)
        if rows is None:
            rows = self._rows[split] = array("q")
        return rows

    def add(self, head: str, relation: str, tail: str, split: str = "all") -> None:
        """Add one triple given by keys."""
        self.split_rows(split).extend((self.entity(head), self.relation(relation), self.entity(tail)))

    def add_many(self, triples: Iterable[tuple[str, str, str]], split: str = "all") -> None:
        """Add triples given by keys (the fast path used by loaders: :func:`intern_key` inlined)."""
        rows = self.split_rows(split)
        ent, rel = self.entity_ids, self.relation_ids
        append = rows.append
        for head, relation, tail in triples:
            h = ent.get(head)
            if h is None:
                h = ent[head] = len(ent)
            r = rel.get(relation)
            if r is None:
                r = rel[relation] = len(rel)
            t = ent.get(tail)
            if t is None:
                t = ent[tail] = len(ent)
            append(h)
            append(r)
            append(t)

    def add_label(self, key: str, text: str, *, preferred: bool) -> None:
        """Give an entity a preferred label (first one wins) or an alias."""
        entity = self.entity(key)
        text = " ".join(text.split())
        if not text:
            return
        if preferred and entity not in self.entity_labels:
            self.entity_labels[entity] = text
        elif text != self.entity_labels.get(entity):
            bucket = self.entity_aliases.setdefault(entity, [])
            if text not in bucket:
                bucket.append(text)

    def build(self, *, dedupe: bool = True) -> TripleStore:
        """Freeze into a :class:`TripleStore`, dropping (and counting) duplicate triples within each split.

        Call it once: the triples move into the store.
        """
        splits: dict[str, np.ndarray] = {}
        dropped: dict[str, int] = {}
        # The arrays view the builder's buffers (no copy at peak memory); the builder is spent afterwards.
        flat_rows, self._rows = self._rows, {}
        for split, flat in flat_rows.items():
            rows = np.frombuffer(flat, dtype=np.int64).reshape(-1, 3) if flat else np.zeros((0, 3), np.int64)
            if dedupe and rows.shape[0]:
                rows, n_dropped = drop_duplicate_rows(rows, self._num_entities(), len(self.relation_ids))
                dropped[split] = n_dropped
            splits[split] = rows
        # Promote the first alias to label? No: unlabelled entities stay unlabelled and are counted.
        return TripleStore(
            name=self.name,
            entity_keys=list(self.entity_ids),
            relation_keys=list(self.relation_ids),
            split_triples=splits or {"all": np.zeros((0, 3), np.int64)},
            entity_labels=self.entity_labels,
            entity_aliases={k: tuple(v) for k, v in self.entity_aliases.items()},
            relation_labels=self.relation_labels,
            relation_templates=self.relation_templates,
            entity_descriptions=self.entity_descriptions,
            annotations=self.annotations,
            key_kind=self.key_kind,
            duplicates_dropped=dropped,
            source=self.source,
        )

    def _num_entities(self) -> int:
        return len(self.entity_ids)


def drop_duplicate_rows(rows: np.ndarray, num_entities: int, num_relations: int) -> tuple[np.ndarray, int]:
    """Drop repeated ``(h, r, t)`` rows keeping first occurrences in order; return rows and how many went."""
    n_ent, n_rel = max(num_entities, 1), max(num_relations, 1)
    if n_ent * n_ent * n_rel < 2**62:
        packed = (rows[:, 0] * n_rel + rows[:, 1]) * n_ent + rows[:, 2]  # (n,) unique code per triple
        _, first = np.unique(packed, return_index=True)
    else:
        _, first = np.unique(rows, axis=0, return_index=True)
    if first.size == rows.shape[0]:
        return rows, 0
    first.sort()
    return rows[first], int(rows.shape[0] - first.size)
