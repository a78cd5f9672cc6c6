"""TripleStore: kgreason's own knowledge base, with integer ids, CSR adjacency and a memory-mappable format.

On disk a store is a folder::

    manifest.json          format, counts per split, sha256 of every file, key kind, source
    entities.txt           one entity key per line (line i = entity id i)
    relations.txt          one relation key per line
    triples.<split>.npy    (n, 3) int64 (head, relation, tail), opened with numpy memory mapping
    names.jsonl            labels, aliases and relation templates (only for ids that have them)
    annotations.jsonl      RDF label triples kept verbatim so RDF -> store -> RDF loses nothing

Every file is written to a temporary folder that is renamed into place, so a crash never leaves half a store.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from array import array
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgreason.errors import KBFormatError
from kgreason.kb.base import KnowledgeBase

FORMAT_NAME = "kgreason.TripleStore"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

#: Entity keys are N-Triples terms (``<iri>``, ``_:b0``, ``"literal"@en``) for RDF sources, plain strings else.
KEY_KINDS = ("plain", "ntriples")


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


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if not text:
        return []
    return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")


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
            if rows.shape[0] == 0:
                continue
            lo, hi = rows.min(axis=0), rows.max(axis=0)
            if lo.min() < 0 or hi[0] >= self.num_entities or hi[2] >= self.num_entities:
                raise ValueError(f"split {split!r}: entity id out of range [0, {self.num_entities})")
            if hi[1] >= self.num_relations:
                raise ValueError(f"split {split!r}: relation id out of range [0, {self.num_relations})")

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

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the store to ``directory`` atomically (a temporary folder renamed into place)."""
        target = Path(directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        for key in self.entity_keys + self.relation_keys:
            if "\n" in key or "\r" in key:
                raise ValueError(f"keys may not contain line breaks: {key!r}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            files: dict[str, str] = {}
            _write_lines(tmp / "entities.txt", self.entity_keys)
            _write_lines(tmp / "relations.txt", self.relation_keys)
            splits: dict[str, dict[str, Any]] = {}
            for split, rows in self._splits.items():
                fname = f"triples.{split}.npy"
                np.save(tmp / fname, np.ascontiguousarray(rows, dtype=np.int64))
                splits[split] = {"file": fname, "count": int(rows.shape[0])}
            with open(tmp / "names.jsonl", "w", encoding="utf-8") as handle:
                described = set(self.entity_descriptions)
                for i in sorted(set(self.entity_labels) | set(self.entity_aliases_map) | described):
                    record = {"entity": i, "label": self.entity_labels.get(i)}
                    if i in self.entity_aliases_map:
                        record["aliases"] = list(self.entity_aliases_map[i])
                    if i in described:
                        record["description"] = self.entity_descriptions[i]
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                for r in sorted(set(self.relation_labels) | set(self.relation_templates)):
                    record = {"relation": r, "label": self.relation_labels.get(r)}
                    if r in self.relation_templates:
                        record["template"] = self.relation_templates[r]
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if self.annotations:
                with open(tmp / "annotations.jsonl", "w", encoding="utf-8") as handle:
                    for entity, predicate, literal in self.annotations:
                        handle.write(json.dumps([entity, predicate, literal], ensure_ascii=False) + "\n")
            for path in sorted(tmp.iterdir()):
                files[path.name] = sha256_file(path)
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
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True, verify: bool = False) -> TripleStore:
        """Open a store folder; triples are memory-mapped unless ``mmap=False``.

        ``verify=True`` also checks every file's sha256 against the manifest.
        """
        folder = Path(directory)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise KBFormatError("not a kgreason store: manifest.json is missing", path=folder)
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise KBFormatError(err.msg, path=manifest_path, line=err.lineno, column=err.colno) from None
        if manifest.get("format") != FORMAT_NAME or manifest.get("format_version") != FORMAT_VERSION:
            raise KBFormatError(
                f"unsupported store format {manifest.get('format')!r} v{manifest.get('format_version')}",
                path=manifest_path,
                expected=f"{FORMAT_NAME} v{FORMAT_VERSION}",
            )
        if verify:
            for fname, digest in manifest["sha256"].items():
                if not (folder / fname).is_file():
                    raise KBFormatError(f"file {fname} named in the manifest is missing", path=folder)
                if sha256_file(folder / fname) != digest:
                    raise KBFormatError(f"checksum mismatch for {fname}", path=folder / fname)
        entity_keys = _read_lines(folder / "entities.txt")
        relation_keys = _read_lines(folder / "relations.txt")
        if len(entity_keys) != manifest["num_entities"] or len(relation_keys) != manifest["num_relations"]:
            raise KBFormatError(
                f"entities.txt/relations.txt hold {len(entity_keys)}/{len(relation_keys)} keys, the manifest "
                f"says {manifest['num_entities']}/{manifest['num_relations']}",
                path=folder,
            )
        splits: dict[str, np.ndarray] = {}
        for split, info in manifest["splits"].items():
            rows = np.load(folder / info["file"], mmap_mode="c" if mmap else None, allow_pickle=False)
            if rows.shape != (info["count"], 3):
                raise KBFormatError(
                    f"{info['file']} has shape {rows.shape}, manifest says ({info['count']}, 3)", path=folder
                )
            splits[split] = rows
        labels, aliases, rel_labels, templates, descriptions = {}, {}, {}, {}, {}
        names_path = folder / "names.jsonl"
        if names_path.is_file():
            with open(names_path, encoding="utf-8") as handle:
                for record in map(json.loads, handle):
                    if "entity" in record:
                        if record.get("label") is not None:
                            labels[record["entity"]] = record["label"]
                        if record.get("aliases"):
                            aliases[record["entity"]] = tuple(record["aliases"])
                        if record.get("description"):
                            descriptions[record["entity"]] = record["description"]
                    else:
                        if record.get("label") is not None:
                            rel_labels[record["relation"]] = record["label"]
                        if record.get("template"):
                            templates[record["relation"]] = record["template"]
        annotations: list[tuple[int, str, str]] = []
        ann_path = folder / "annotations.jsonl"
        if ann_path.is_file():
            with open(ann_path, encoding="utf-8") as handle:
                annotations = [tuple(json.loads(line)) for line in handle]  # type: ignore[misc]
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
        store.directory = folder
        return store

    directory: Path | None = None


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target``, replacing an existing folder with at most a moment of absence."""
    if target.exists():
        backup = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, backup)
        os.replace(tmp, target)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, target)


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
        """Id of ``key``, allocating the next id for a new key."""
        ids = self.entity_ids
        found = ids.get(key)
        if found is None:
            found = ids[key] = len(ids)
        return found

    def relation(self, key: str) -> int:
        ids = self.relation_ids
        found = ids.get(key)
        if found is None:
            found = ids[key] = len(ids)
        return found

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
        """Add triples given by keys (the fast path used by loaders)."""
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
