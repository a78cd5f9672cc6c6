"""Saved KG embeddings: a folder keyed by the KB's entity and relation ids, never pickled.

Layout (``format: kgreason.kge.v1``)::

    run/
      embeddings.safetensors   entity (E, De) and relation (R', Dr) float32 matrices
      entities.txt             entity keys, one per line, in row order
      relations.txt            relation keys, one per line, in row order (R of them)
      config.json              model, dim, reciprocal, layouts, model kwargs, training config, metrics

Complex models (ComplEx, RotatE entities) store real and imaginary parts concatenated (``re | im``); RotatE
relations are phases. With reciprocal relations the relation matrix has ``2R`` rows: row ``R + i`` is the
inverse of relation ``i``. The folder is written with :func:`kgreason.core.atomic.atomic_directory` (a
temporary sibling renamed into place).

:meth:`KGEEmbeddings.entity_features_for` aligns the rows with any KB **by entity key**, so features follow
entities even when another loader numbers them differently; :func:`read_entity_table` reads only the entity
rows and keys (what node features need) and :func:`align_entity_rows` puts them in a KB's order.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from kgreason.core.atomic import atomic_directory
from kgreason.core.errors import KGReasonError

if TYPE_CHECKING:
    from kgreason.kb.base import KnowledgeBase
    from kgreason.kge.models import KGEModel

FORMAT = "kgreason.kge.v1"
TENSORS_FILE = "embeddings.safetensors"
ENTITIES_FILE = "entities.txt"
RELATIONS_FILE = "relations.txt"
CONFIG_FILE = "config.json"
#: The resumable state `kgreason kge train` keeps in its run folder until the embeddings are saved.
CHECKPOINT_FILE = "checkpoint.pt"


class KGEFormatError(KGReasonError, ValueError):
    """A saved-embeddings folder is missing a file or its files disagree."""


class KGEMissingFileError(KGEFormatError, FileNotFoundError):
    """A file of a saved-embeddings folder is missing."""


class KGEAlignmentError(KGReasonError, ValueError):
    """Entities (or relations) of a KB have no row in the embeddings."""


@dataclass(frozen=True)
class AlignedFeatures:
    """Embedding rows in a KB's id order: ``features (kb.num_entities, De)``; ``missing`` rows are zeros."""

    features: Tensor
    missing: int
    missing_keys: tuple[str, ...] = ()


@dataclass
class KGEEmbeddings:
    """Loaded embeddings with their keys and the config needed to rebuild the scoring model."""

    entity: Tensor
    relation: Tensor
    entity_keys: list[str]
    relation_keys: list[str]
    model: str
    dim: int
    reciprocal: bool
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def num_entities(self) -> int:
        return len(self.entity_keys)

    @property
    def num_relations(self) -> int:
        """Relations of the KB (without the reciprocal copies)."""
        return len(self.relation_keys)

    @property
    def feature_dim(self) -> int:
        """Width of one entity feature row (``2 * dim`` for complex models)."""
        return int(self.entity.shape[1])

    @cached_property
    def entity_index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.entity_keys)}

    @cached_property
    def relation_index(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self.relation_keys)}

    # ------------------------------------------------------------------------------------ alignment
    def entity_ids_for(self, kb: KnowledgeBase) -> Tensor:
        """Row of each KB entity ``(kb.num_entities,)``; ``-1`` where the embeddings lack the key."""
        return _entity_rows(self.entity_index, kb)

    def relation_ids_for(self, kb: KnowledgeBase) -> Tensor:
        """Row of each KB relation ``(kb.num_relations,)``; ``-1`` where the embeddings lack the key."""
        index = self.relation_index
        return torch.tensor(
            [index.get(kb.relation_key(i), -1) for i in range(kb.num_relations)], dtype=torch.long
        )

    def align(self, kb: KnowledgeBase, *, missing: str = "error") -> AlignedFeatures:
        """Entity rows in ``kb``'s id order. ``missing``: ``"error"`` (raise) or ``"zeros"`` (zero rows)."""
        return align_entity_rows(
            self.entity, self.entity_index, kb, missing=missing, where=self.path or "these embeddings"
        )

    def entity_features_for(self, kb: KnowledgeBase, *, missing: str = "error") -> Tensor:
        """Entity features ``(kb.num_entities, De)`` aligned by key (node features of the fused model).

        With ``missing="zeros"`` absent entities get zero rows and a warning gives their count.
        """
        aligned = self.align(kb, missing=missing)
        if aligned.missing:
            warnings.warn(
                f"{aligned.missing} of {kb.num_entities} entities have no KG embedding; using zero vectors",
                stacklevel=2,
            )
        return aligned.features

    def remap_triples(self, kb: KnowledgeBase, triples: Tensor) -> Tensor:
        """``kb``-id triples ``(n, 3)`` as embedding-row triples; raises when a key has no row."""
        ent, rel = self.entity_ids_for(kb), self.relation_ids_for(kb)
        triples = torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3)  # (n, 3)
        out = torch.stack([ent[triples[:, 0]], rel[triples[:, 1]], ent[triples[:, 2]]], dim=1)  # (n, 3)
        bad = (out < 0).any(dim=1)
        if bool(bad.any()):
            h, r, t = (int(x) for x in triples[bad.nonzero()[0, 0]])
            raise KGEAlignmentError(
                f"{int(bad.sum())} triples of KB {kb.name!r} use entities or relations that the embeddings in "
                f"{self.path or '<memory>'} do not have, e.g. ({kb.entity_key(h)}, {kb.relation_key(r)}, "
                f"{kb.entity_key(t)})"
            )
        return out

    # ------------------------------------------------------------------------------------ scoring model
    def scorer_for(self, kb: KnowledgeBase) -> KBAlignedScorer:
        """A :class:`~kgreason.kge.evaluate.LinkScorer` over ``kb``'s entity and relation ids (matched by key)."""
        return KBAlignedScorer(
            self.build_model(), entity_rows=self.entity_ids_for(kb), relation_rows=self.relation_ids_for(kb)
        )

    def build_model(self) -> KGEModel:
        """The scoring model with these weights (for evaluation and prediction)."""
        from kgreason.kge.models import build_kge_model

        model = build_kge_model(
            self.model,
            num_entities=self.num_entities,
            num_relations=self.num_relations,
            dim=self.dim,
            reciprocal=self.reciprocal,
            **self.model_kwargs,
        )
        model.import_embeddings(self.entity, self.relation)
        return model.eval()


def _entity_rows(index: dict[str, int], kb: KnowledgeBase) -> Tensor:
    """Row of each KB entity ``(kb.num_entities,)`` in a table keyed by ``index``; ``-1`` where a key is absent."""
    return torch.tensor([index.get(kb.entity_key(i), -1) for i in range(kb.num_entities)], dtype=torch.long)


def align_entity_rows(
    entity: Tensor,
    index: dict[str, int],
    kb: KnowledgeBase,
    *,
    missing: str = "error",
    where: object = "these embeddings",
) -> AlignedFeatures:
    """Rows of ``entity`` (E', De) in ``kb``'s id order, matched by key (``index``: key -> row).

    ``missing``: ``"error"`` (raise :class:`KGEAlignmentError`) or ``"zeros"`` (zero rows for absent keys).
    """
    if missing not in ("error", "zeros"):
        raise ValueError(f"missing must be 'error' or 'zeros', got {missing!r}")
    rows = _entity_rows(index, kb)  # (N,)
    absent = (rows < 0).nonzero().flatten()  # (m,)
    keys = tuple(kb.entity_key(int(i)) for i in absent[:10])
    if absent.numel() and missing == "error":
        raise KGEAlignmentError(
            f"{absent.numel()} of {kb.num_entities} entities of KB {kb.name!r} have no embedding in "
            f"{where} (first: {', '.join(keys)}); train on this KB or pass missing='zeros'"
        )
    features = torch.zeros(kb.num_entities, int(entity.shape[1]), dtype=entity.dtype)  # (N, De)
    present = rows >= 0
    features[present] = entity[rows[present]]
    return AlignedFeatures(features=features, missing=int(absent.numel()), missing_keys=keys)


def _layouts(model: KGEModel) -> tuple[str, str]:
    entity = "complex (real | imaginary concatenated)" if model.is_complex else "real"
    if model.name == "rotate":
        relation = "phases in radians (relation r = exp(i * phase))"
    elif model.name == "complex":
        relation = "complex (real | imaginary concatenated)"
    else:
        relation = "real"
    return entity, relation


def _check_keys(keys: list[str], what: str) -> None:
    for key in keys:
        if "\n" in key or "\r" in key:
            raise KGEFormatError(f"{what} key {key!r} holds a line break; it cannot be written one per line")


def written_by_kge(path: Path) -> bool:
    """An empty folder, saved embeddings, or only the resumable checkpoint of a ``kge train`` run."""
    names = {entry.name for entry in path.iterdir()}
    return not names or CONFIG_FILE in names or names == {CHECKPOINT_FILE}


def save_kge(
    model: KGEModel,
    *,
    path: str | Path,
    entity_keys: list[str],
    relation_keys: list[str],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    kb_name: str | None = None,
) -> Path:
    """Write ``model``'s embeddings with their keys to the folder ``path`` (atomically; see the module doc).

    An existing folder is replaced only when it holds saved embeddings; any other non-empty folder is an error.
    """
    from safetensors.torch import save_file

    import kgreason

    path = Path(path)
    entity, relation = model.export_embeddings()  # (E, De), (R', Dr)
    if len(entity_keys) != entity.shape[0]:
        raise ValueError(f"{len(entity_keys)} entity keys for {entity.shape[0]} embedding rows")
    if len(relation_keys) != model.num_base_relations:
        raise ValueError(f"{len(relation_keys)} relation keys for {model.num_base_relations} relations")
    _check_keys(entity_keys, "entity")
    _check_keys(relation_keys, "relation")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    if path.is_dir() and not written_by_kge(path):
        raise FileExistsError(
            f"{path} is a non-empty folder without saved embeddings; refusing to replace it"
        )
    entity_layout, relation_layout = _layouts(model)
    meta = {
        "format": FORMAT,
        "model": model.name,
        "dim": int(model.hidden_channels),
        "reciprocal": bool(model.reciprocal),
        "model_kwargs": model.extra_config(),
        "num_entities": int(entity.shape[0]),
        "num_relations": int(model.num_base_relations),
        "relation_rows": int(relation.shape[0]),
        "entity_layout": entity_layout,
        "relation_layout": relation_layout,
        "inverse_relations": (
            f"rows {model.num_base_relations}..{2 * model.num_base_relations - 1} are the inverses of rows "
            f"0..{model.num_base_relations - 1}"
            if model.reciprocal
            else None
        ),
        "kb": kb_name,
        "training": config or {},
        "metrics": metrics or {},
        "versions": {"kgreason": getattr(kgreason, "__version__", None), "torch": torch.__version__},
    }
    with atomic_directory(path) as tmp:
        save_file(
            {"entity": entity.float().cpu().contiguous(), "relation": relation.float().cpu().contiguous()},
            str(tmp / TENSORS_FILE),
            metadata={"format": FORMAT, "model": model.name},
        )
        (tmp / ENTITIES_FILE).write_text("\n".join(entity_keys) + "\n", encoding="utf-8")
        (tmp / RELATIONS_FILE).write_text("\n".join(relation_keys) + "\n", encoding="utf-8")
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path


def _read_keys(path: Path, expected: int, what: str) -> list[str]:
    if not path.is_file():
        raise KGEMissingFileError(f"{path}: missing (expected {expected} {what} keys, one per line)")
    text = path.read_text(encoding="utf-8")
    keys = text.split("\n")
    if keys and keys[-1] == "":
        keys.pop()
    if len(keys) != expected:
        raise KGEFormatError(f"{path}: {len(keys)} lines, expected {expected} {what} keys (one per row)")
    return keys


def _read_tensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    tensors_path = path / TENSORS_FILE
    if not tensors_path.is_file():
        raise KGEMissingFileError(
            f"{tensors_path}: missing (expected a folder written by 'kgreason kge train': {TENSORS_FILE} with "
            f"the entity and relation matrices, {ENTITIES_FILE}, {RELATIONS_FILE}, {CONFIG_FILE})"
        )
    return load_file(str(tensors_path))


def read_entity_table(path: str | Path) -> tuple[Tensor, list[str]]:
    """Only the entity rows ``(E, De)`` and their keys of a saved folder (``config.json`` and the relations are
    not read). Complex rows become ``[real, imag]`` rows.

    Raises:
        KGEMissingFileError: a file is missing (a ``FileNotFoundError``).
        KGEFormatError: the files disagree.
    """
    path = Path(path)
    tensors = _read_tensors(path)
    tensors_path = path / TENSORS_FILE
    if "entity" not in tensors:
        raise KGEFormatError(
            f"{tensors_path}: no 'entity' tensor (found {sorted(tensors)}); expected entity (E, d)"
        )
    table = tensors["entity"]  # (E, d)
    if table.is_complex():
        table = torch.cat([table.real, table.imag], dim=-1)  # (E, 2d)
    if table.dim() != 2:
        raise KGEFormatError(f"{tensors_path}: 'entity' has shape {tuple(table.shape)}, expected (E, d)")
    return table, _read_keys(path / ENTITIES_FILE, int(table.shape[0]), "entity")


def load_kge(path: str | Path) -> KGEEmbeddings:
    """Read a folder written by :func:`save_kge` (or ``kgreason kge train``)."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise KGEFormatError(f"{path}: no {CONFIG_FILE}; expected a folder written by 'kgreason kge train'")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise KGEFormatError(f"{config_path}, line {err.lineno}: invalid JSON ({err.msg})") from None
    if meta.get("format") != FORMAT:
        raise KGEFormatError(f"{config_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    tensors_path = path / TENSORS_FILE
    tensors = _read_tensors(path)
    if "entity" not in tensors or "relation" not in tensors:
        raise KGEFormatError(
            f"{tensors_path}: expected tensors 'entity' and 'relation', got {sorted(tensors)}"
        )
    entity, relation = tensors["entity"], tensors["relation"]
    entity_keys = _read_keys(path / ENTITIES_FILE, int(entity.shape[0]), "entity")
    num_relations = int(meta["num_relations"])
    reciprocal = bool(meta["reciprocal"])
    if relation.shape[0] != num_relations * (2 if reciprocal else 1):
        raise KGEFormatError(
            f"{tensors_path}: {relation.shape[0]} relation rows, expected {num_relations}"
            f"{' x 2 (reciprocal)' if reciprocal else ''}"
        )
    relation_keys = _read_keys(path / RELATIONS_FILE, num_relations, "relation")
    return KGEEmbeddings(
        entity=entity,
        relation=relation,
        entity_keys=entity_keys,
        relation_keys=relation_keys,
        model=meta["model"],
        dim=int(meta["dim"]),
        reciprocal=reciprocal,
        model_kwargs=dict(meta.get("model_kwargs") or {}),
        config=dict(meta.get("training") or {}),
        metrics=dict(meta.get("metrics") or {}),
        path=path,
    )


class KBAlignedScorer:
    """A KGE model scoring in another KB's id order: ``score_all`` takes and returns that KB's ids.

    An entity the embeddings lack scores the query's mean as a candidate, and a query whose anchor they lack
    scores every entity alike (0): no evidence either way, so a fused score falls back on its other parts.
    Every relation of the KB must have embeddings.
    """

    def __init__(self, model: KGEModel, *, entity_rows: Tensor, relation_rows: Tensor) -> None:
        if bool((relation_rows < 0).any()):
            raise KGEAlignmentError(
                f"{int((relation_rows < 0).sum())} relations of the KB have no embeddings"
            )
        self.model = model
        self.entity_rows = entity_rows  # (E_kb,) row in the embeddings, -1 if absent
        self.relation_rows = relation_rows  # (R_kb,)
        self.missing = self.entity_rows < 0  # (E_kb,)

    @property
    def num_entities(self) -> int:
        return int(self.entity_rows.numel())

    @torch.no_grad()
    def score_all(self, anchor: Tensor, rel: Tensor, *, predict: str) -> Tensor:
        """``(B, E_kb)`` scores of the queries ``anchor (B,)``, ``rel (B,)`` given in the KB's ids."""
        rows = self.entity_rows[anchor.cpu()]  # (B,)
        known = rows >= 0
        scores = self.model.score_all(
            rows.clamp(min=0), self.relation_rows[rel.cpu()], predict=predict
        )  # (B, E_emb)
        out = scores[:, self.entity_rows.clamp(min=0)]  # (B, E_kb)
        if bool(self.missing.any()):
            out[:, self.missing] = scores.mean(dim=1, keepdim=True)
        out[~known] = 0.0
        return out
