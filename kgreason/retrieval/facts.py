"""Fact retrieval: every graph fact of a KB verbalised, encoded and indexed with faiss (inner product).

The index holds one unit vector per row of ``kb.graph_triples()``, in order, so a hit's id is a triple row.
Small KBs get an exact ``IndexFlatIP``; from :data:`HNSW_THRESHOLD` facts up an ``IndexHNSWFlat`` (graph
search, ~0.2-0.3 ms per query at recall@10 ≥ 0.95); ``ivf`` (``IndexIVFFlat``) is available on request.

An index is saved as ``index.faiss`` (``faiss.write_index``, no pickle) plus ``meta.json`` (encoder, dimension,
index type and parameters, number of facts, fingerprint) and reused while its fingerprint matches. The
fingerprint is the sha256 of the graph triples, of their sentences and of the encoder's identity, so a changed
KB, relabelled entities or another encoder rebuild it. Where it lives:

* ``index_dir`` when given (one index; a stale one is overwritten);
* else ``<store>/fact_index/<fingerprint>/`` for a loaded :class:`~kgreason.kb.store.TripleStore` whose folder
  is writable;
* else ``kgreason.core.paths.cache_dir()/index/<fingerprint>/``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from kgreason.core.atomic import atomic_path, atomic_write_text
from kgreason.core.config import INDEX_TYPES
from kgreason.core.context import RetrievedFact
from kgreason.core.errors import ConfigError
from kgreason.core.paths import cache_dir
from kgreason.kb.base import as_triple_array
from kgreason.kb.store import FACT_INDEX_DIR

if TYPE_CHECKING:
    from kgreason.encoders.sentence import TextEncoder
    from kgreason.kb.base import KnowledgeBase

log = logging.getLogger(__name__)

INDEX_FORMAT = "kgreason.FactIndex"
INDEX_FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
META_FILE = "meta.json"
#: Folder inside a store that holds its fact indexes (one per fingerprint).
STORE_SUBDIR = FACT_INDEX_DIR
#: ``index_type="auto"`` uses an exact flat index below this many facts and HNSW from here up.
HNSW_THRESHOLD = 50_000
#: HNSW defaults, tuned with ``benchmarks/facts.py``: on 1M MiniLM vectors (2 CPU cores) recall@10 0.97 vs
#: exact search at ~0.3 ms per query; efConstruction 80 reached only 0.92 at that speed.
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 120
HNSW_EF_SEARCH = 64
#: IVF k-means trains on this many sampled vectors per list (faiss wants at least 39).
IVF_TRAIN_PER_LIST = 40
#: Vectors added to an HNSW / IVF index per step (one progress-bar tick).
ADD_CHUNK = 20_000


@dataclass(frozen=True)
class IndexParams:
    """The kind of faiss index and its parameters.

    Build-time parameters (``hnsw_m``, ``ef_construction``, ``ivf_nlist``) are part of an index's identity;
    search-time ones (``ef_search``, ``ivf_nprobe``) can change without a rebuild.
    """

    kind: str = "flat"
    hnsw_m: int = HNSW_M
    ef_construction: int = HNSW_EF_CONSTRUCTION
    ef_search: int = HNSW_EF_SEARCH
    ivf_nlist: int = 0
    ivf_nprobe: int = 16

    def build_key(self) -> dict[str, Any]:
        """The parameters an index must have been built with to be reused."""
        if self.kind == "hnsw":
            return {"kind": "hnsw", "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction}
        if self.kind == "ivf":
            return {"kind": "ivf", "ivf_nlist": self.ivf_nlist}
        return {"kind": self.kind}


def choose_index(
    num_facts: int,
    *,
    index_type: str = "auto",
    hnsw_threshold: int = HNSW_THRESHOLD,
    hnsw_m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int = HNSW_EF_SEARCH,
    ivf_nlist: int | None = None,
    ivf_nprobe: int = 16,
) -> IndexParams:
    """Index parameters for ``num_facts`` vectors (``auto``: flat below ``hnsw_threshold``, else HNSW).

    ``ivf_nlist`` defaults to ``sqrt(n)`` lists (k-means stays cheap on a CPU), and never more than ``n / 39``
    (faiss's minimum training points per list).
    """
    kind = index_type.lower()
    if kind not in INDEX_TYPES:
        raise ConfigError(f"index_type must be one of {', '.join(INDEX_TYPES)}, got {index_type!r}")
    if kind == "auto":
        kind = "hnsw" if num_facts >= hnsw_threshold else "flat"
    if num_facts == 0:
        kind = "flat"
    nlist = 0
    if kind == "ivf":
        nlist = ivf_nlist or round(math.sqrt(num_facts))
        nlist = max(1, min(nlist, num_facts // 39 or 1))
    return IndexParams(
        kind=kind,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
        ivf_nlist=nlist,
        ivf_nprobe=min(ivf_nprobe, nlist) if nlist else ivf_nprobe,
    )


@dataclass
class FactIndexMeta:
    """What ``meta.json`` records beside an index."""

    fingerprint: str
    encoder: str
    dim: int
    num_facts: int
    params: dict[str, Any]
    kb: str = ""
    faiss_version: str = ""
    format: str = INDEX_FORMAT
    format_version: int = INDEX_FORMAT_VERSION


@dataclass(frozen=True)
class SearchHits:
    """Raw faiss results; ``ids`` is -1 where fewer than ``k`` vectors exist.

    Shapes:
        scores: (q, k) inner products (cosine for unit vectors), best first
        ids: (q, k) rows of the indexed vectors
    """

    scores: np.ndarray
    ids: np.ndarray


def _float_rows(vectors: np.ndarray, dim: int) -> np.ndarray:
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"vectors must have shape (n, {dim}), got {array.shape}")
    return array


class FactIndex:
    """A faiss inner-product index over unit vectors, with its :class:`FactIndexMeta`.

    Build with :meth:`build`, persist with :meth:`save` / :meth:`load`.
    """

    def __init__(self, *, index: Any, meta: FactIndexMeta, params: IndexParams) -> None:
        self.index = index
        self.meta = meta
        self.params = params

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        params: IndexParams,
        fingerprint: str = "",
        encoder: str = "",
        kb: str = "",
        progress: bool | None = None,
        seed: int = 0,
    ) -> FactIndex:
        """Index (n, d) unit vectors (row i gets id i)."""
        import faiss
        from tqdm.auto import tqdm

        n, dim = vectors.shape
        vectors = _float_rows(vectors, dim)  # (n, d)
        if params.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif params.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.ef_construction
            index.hnsw.efSearch = params.ef_search
        elif params.kind == "ivf":
            index = faiss.index_factory(dim, f"IVF{params.ivf_nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = min(n, max(params.ivf_nlist * IVF_TRAIN_PER_LIST, 10_000))
            train = vectors[np.sort(rng.choice(n, size=sample, replace=False))] if sample < n else vectors
            if train.shape[0] < 39 * params.ivf_nlist:  # a tiny KB: say nothing about too few points
                index.cp.min_points_per_centroid = 1
            index.train(train)  # k-means over (sample, d)
            index.nprobe = params.ivf_nprobe
        else:
            raise ValueError(f"unknown index kind {params.kind!r}")
        show = (params.kind != "flat" and n >= ADD_CHUNK) if progress is None else progress
        with tqdm(total=n, desc=f"building {params.kind} index", unit="fact", disable=not show) as bar:
            for start in range(0, n, ADD_CHUNK):
                chunk = vectors[start : start + ADD_CHUNK]  # (c, d)
                index.add(chunk)
                bar.update(chunk.shape[0])
        meta = FactIndexMeta(
            fingerprint=fingerprint,
            encoder=encoder,
            dim=dim,
            num_facts=n,
            params=asdict(params),
            kb=kb,
            faiss_version=getattr(faiss, "__version__", ""),
        )
        return cls(index=index, meta=meta, params=params)

    def set_search_params(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change HNSW ``efSearch`` or IVF ``nprobe`` (no rebuild)."""
        updates: dict[str, int] = {}
        if ef_search is not None and self.params.kind == "hnsw":
            self.index.hnsw.efSearch = ef_search
            updates["ef_search"] = ef_search
        if nprobe is not None and self.params.kind == "ivf":
            self.index.nprobe = nprobe
            updates["ivf_nprobe"] = nprobe
        if updates:
            self.params = IndexParams(**{**asdict(self.params), **updates})

    def search(self, queries: np.ndarray, *, k: int = 10) -> SearchHits:
        """Top-``k`` rows for (q, d) unit query vectors."""
        queries = _float_rows(np.atleast_2d(queries), self.dim)  # (q, d)
        k = max(1, int(k))
        if self.params.kind == "hnsw" and self.index.hnsw.efSearch < k:
            self.index.hnsw.efSearch = k
        scores, ids = self.index.search(queries, k)  # (q, k), (q, k)
        return SearchHits(scores=scores, ids=ids)

    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss`` then ``meta.json`` into ``directory``, each atomically."""
        import faiss

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / INDEX_FILE) as tmp:
            faiss.write_index(self.index, str(tmp))
        text = json.dumps(asdict(self.meta), indent=2) + "\n"
        atomic_write_text(folder / META_FILE, text)
        return folder

    @staticmethod
    def read_meta(directory: str | Path) -> FactIndexMeta | None:
        """The meta of a saved index, or ``None`` when there is none or it is unreadable / another format."""
        path = Path(directory) / META_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            meta = FactIndexMeta(**data)
        except (OSError, ValueError, TypeError):
            return None
        if meta.format != INDEX_FORMAT or meta.format_version != INDEX_FORMAT_VERSION:
            return None
        return meta

    @classmethod
    def load(cls, directory: str | Path, *, meta: FactIndexMeta | None = None) -> FactIndex:
        """Read an index written by :meth:`save` (``faiss.read_index``; nothing is unpickled).

        Raises:
            ValueError: the files are missing or disagree with each other.
        """
        import faiss

        folder = Path(directory)
        meta = meta or cls.read_meta(folder)
        if meta is None:
            raise ValueError(f"{folder}: no readable {META_FILE} of format {INDEX_FORMAT}")
        index_path = folder / INDEX_FILE
        if not index_path.is_file():
            raise ValueError(f"{index_path}: missing")
        index = faiss.read_index(str(index_path))
        if index.ntotal != meta.num_facts or index.d != meta.dim:
            raise ValueError(
                f"{index_path}: holds {index.ntotal} vectors of dimension {index.d}, {META_FILE} says "
                f"{meta.num_facts} of dimension {meta.dim}"
            )
        params = IndexParams(**meta.params)
        loaded = cls(index=index, meta=meta, params=params)
        loaded.set_search_params(ef_search=params.ef_search, nprobe=params.ivf_nprobe)
        return loaded


def fingerprint_facts(triples: np.ndarray, texts: Sequence[str], encoder_identity: str) -> str:
    """sha256 of the (n, 3) int64 triples, their sentences and the encoder identity."""
    digest = hashlib.sha256(f"{INDEX_FORMAT}.v{INDEX_FORMAT_VERSION}\n".encode())
    digest.update(np.ascontiguousarray(triples, dtype="<i8").tobytes())
    digest.update(b"\0texts\0")
    digest.update("\n".join(texts).encode("utf-8"))
    digest.update(b"\0encoder\0")
    digest.update(encoder_identity.encode("utf-8"))
    return digest.hexdigest()


def encoder_identity(encoder: TextEncoder) -> str:
    """What decides an encoder's vectors: ``encoder.identity`` when it has one, else its name."""
    return str(getattr(encoder, "identity", None) or encoder.name)


def _writable_dir(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if missing), by trying to."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


@dataclass
class FactIndexReport:
    """How a :class:`FactRetriever` got its index."""

    directory: Path | None
    built: bool
    reason: str
    num_facts: int
    params: IndexParams = field(default_factory=IndexParams)


class FactRetriever:
    """Top-k facts of a knowledge base for a text, by similarity of sentence vectors.

    Args:
        kb: the knowledge base; its :meth:`~kgreason.kb.base.KnowledgeBase.graph_triples` are indexed.
        encoder: a :class:`~kgreason.encoders.sentence.SentenceEncoder` (or anything with ``name``, ``dim``
            and ``encode``); default: the embedded encoder.
        index_dir: where to keep the index (default: beside the store, else the cache; see the module).
        index_type: ``auto``, ``flat``, ``hnsw`` or ``ivf``.
        hnsw_threshold: number of facts from which ``auto`` picks HNSW.
        hnsw_m, ef_construction, ef_search: HNSW parameters.
        ivf_nlist, ivf_nprobe: IVF parameters (``nlist`` default ``sqrt(n)``).
        save: write the index to disk (``False``: keep it in memory only).
        rebuild: build even when a matching index exists.
        progress: progress bars while encoding and building (default: for large KBs).
    """

    def __init__(
        self,
        *,
        kb: KnowledgeBase,
        encoder: TextEncoder | None = None,
        index_dir: str | Path | None = None,
        index_type: str = "auto",
        hnsw_threshold: int = HNSW_THRESHOLD,
        hnsw_m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
        ivf_nlist: int | None = None,
        ivf_nprobe: int = 16,
        save: bool = True,
        rebuild: bool = False,
        progress: bool | None = None,
    ) -> None:
        if encoder is None:
            from kgreason.encoders.sentence import SentenceEncoder

            encoder = SentenceEncoder()
        self.kb = kb
        self.encoder = encoder
        self.triples = as_triple_array(kb.graph_triples())  # (n, 3)
        texts = kb.verbalize(self.triples)
        self.fingerprint = fingerprint_facts(self.triples, texts, encoder_identity(encoder))
        self.params = choose_index(
            len(texts),
            index_type=index_type,
            hnsw_threshold=hnsw_threshold,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            ivf_nlist=ivf_nlist,
            ivf_nprobe=ivf_nprobe,
        )
        directory = self._directory(index_dir) if save else None
        self.index, self.report = self._load_or_build(directory, texts, rebuild=rebuild, progress=progress)

    # ------------------------------------------------------------------ index
    def _directory(self, index_dir: str | Path | None) -> Path:
        if index_dir is not None:
            return Path(index_dir)
        store_dir = getattr(self.kb, "directory", None)
        if store_dir is not None and Path(store_dir).is_dir():
            candidate = Path(store_dir) / STORE_SUBDIR / self.fingerprint
            if _writable_dir(candidate.parent):
                return candidate
        return cache_dir() / "index" / self.fingerprint

    def _load_or_build(
        self, directory: Path | None, texts: list[str], *, rebuild: bool, progress: bool | None
    ) -> tuple[FactIndex, FactIndexReport]:
        reason = "not saved (save=False)" if directory is None else "no index yet"
        if directory is not None and not rebuild:
            meta = FactIndex.read_meta(directory)
            if meta is not None:
                wanted = self.params.build_key()
                have = IndexParams(**meta.params).build_key()
                if meta.fingerprint != self.fingerprint:
                    reason = "fingerprint changed (KB, fact sentences or encoder)"
                elif have != wanted:
                    reason = f"index parameters changed ({have} -> {wanted})"
                else:
                    try:
                        index = FactIndex.load(directory, meta=meta)
                    except (ValueError, RuntimeError) as err:
                        reason = f"saved index unreadable ({err})"
                    else:
                        index.set_search_params(
                            ef_search=self.params.ef_search, nprobe=self.params.ivf_nprobe
                        )
                        report = FactIndexReport(
                            directory=directory,
                            built=False,
                            reason="reused",
                            num_facts=len(index),
                            params=index.params,
                        )
                        return index, report
        elif rebuild:
            reason = "rebuild requested"
        log.info("building fact index for %s (%d facts): %s", self.kb.name, len(texts), reason)
        vectors = self.encoder.encode(texts, progress=progress)  # (n, d)
        index = FactIndex.build(
            vectors,
            params=self.params,
            fingerprint=self.fingerprint,
            encoder=encoder_identity(self.encoder),
            kb=self.kb.name,
            progress=progress,
        )
        if directory is not None:
            try:
                index.save(directory)
            except OSError as err:
                log.warning("could not save the fact index to %s: %s", directory, err)
                directory = None
        report = FactIndexReport(
            directory=directory, built=True, reason=reason, num_facts=len(index), params=index.params
        )
        return index, report

    def __len__(self) -> int:
        return len(self.index)

    # ------------------------------------------------------------------ search
    @overload
    def search(self, query: str, *, k: int = 10) -> list[RetrievedFact]: ...
    @overload
    def search(self, query: Sequence[str], *, k: int = 10) -> list[list[RetrievedFact]]: ...

    def search(
        self, query: str | Sequence[str], *, k: int = 10
    ) -> list[RetrievedFact] | list[list[RetrievedFact]]:
        """Top-``k`` facts for one text (a list), or for each of several texts (a list of lists)."""
        if isinstance(query, str):
            return self.search_vectors(self.encoder.encode([query]), k=k)[0]
        texts = list(query)
        if not texts:
            return []
        return self.search_vectors(self.encoder.encode(texts), k=k)

    def search_vectors(self, vectors: np.ndarray, *, k: int = 10) -> list[list[RetrievedFact]]:
        """Top-``k`` facts for each row of (q, d) unit query vectors."""
        vectors = np.atleast_2d(vectors)  # (q, d)
        if len(self.index) == 0:
            return [[] for _ in range(vectors.shape[0])]
        hits = self.index.search(vectors, k=min(k, len(self.index)))
        valid = hits.ids >= 0  # (q, k)
        rows = self.triples[hits.ids[valid]]  # (h, 3)
        texts = iter(self.kb.verbalize(rows))
        triples = iter(rows.tolist())
        out: list[list[RetrievedFact]] = []
        for q in range(hits.ids.shape[0]):
            facts = []
            for score in hits.scores[q][valid[q]].tolist():
                h, r, t = next(triples)
                facts.append(RetrievedFact(triple=(h, r, t), text=next(texts), score=float(score)))
            out.append(facts)
        return out
