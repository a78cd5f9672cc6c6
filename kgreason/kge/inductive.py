"""GraIL's inductive link-prediction splits (Teru et al., ICML 2020): train on one graph, rank on another.

``<root>/kg/inductive/<dataset>_v<N>/`` is the training graph (its ``train`` facts train, ``valid`` selects) and
``<dataset>_v<N>_ind/`` a graph over disjoint entities with the same relations: its ``train`` facts are what the
model may read at test time and its ``test`` triples are ranked; its relation ids are the training graph's (a
relation id means the same relation in both graphs). Entity texts come from the full KG's KG-BERT
files (``kg/WN18RR/text_kgbert``, ``kg/FB15k-237/text_kgbert``); NELL has none (its keys carry the names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kgreason.core.errors import ConfigError

if TYPE_CHECKING:
    from kgreason.kb.store import TripleStore

#: dataset name -> the full KG folder (under ``kg/``) whose ``text_kgbert`` names its entities, or ``None``.
DATASETS = {"WN18RR": "WN18RR", "fb237": "FB15k-237", "nell": None}
VERSIONS = (1, 2, 3, 4)


@dataclass(frozen=True)
class InductiveSplit:
    """One version of one dataset: the training graph and the inference graph (disjoint entities)."""

    name: str
    train: TripleStore
    inference: TripleStore

    def check_disjoint(self) -> int:
        """Entities the two graphs share (GraIL's splits share none)."""
        keys = {self.train.entity_key(e) for e in range(self.train.num_entities)}
        return sum(self.inference.entity_key(e) in keys for e in range(self.inference.num_entities))


def inductive_name(dataset: str, version: int) -> str:
    """``WN18RR_v1`` etc.; raises ConfigError naming the known datasets and versions."""
    canonical = {k.lower(): k for k in DATASETS}.get(dataset.lower())
    if canonical is None:
        raise ConfigError(f"dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    if version not in VERSIONS:
        raise ConfigError(f"version: expected one of {', '.join(map(str, VERSIONS))}, got {version!r}")
    return f"{canonical}_v{version}"


def load_inductive(root: str | Path, dataset: str, version: int, *, progress: bool = False) -> InductiveSplit:
    """Load ``<root>/kg/inductive/<dataset>_v<version>{,_ind}`` with the full KG's entity texts.

    ``root`` is the public data folder (holding ``kg/``).
    """
    from kgreason.kb.loaders.splits import load_split_folder, text_folder

    name = inductive_name(dataset, version)
    base = Path(root) / "kg"
    full = DATASETS[name.split("_v")[0]]
    texts = text_folder(base / full) if full is not None else None
    folder = base / "inductive" / name
    train = load_split_folder(folder, name=name, progress=progress, text_dir=texts)
    inference = load_split_folder(
        base / "inductive" / f"{name}_ind", name=f"{name}_ind", progress=progress, text_dir=texts
    )
    # each folder numbers its relations as it meets them: give the inference graph the training graph's ids
    inference = inference.with_relation_order(train.relation_keys)
    return InductiveSplit(name=name, train=train, inference=inference)
