"""From a CompanyGraph to model inputs: scaled features, company texts, ego subgraphs, the risk task.

Each company becomes one example of the shared fused model (:class:`~kgreason.models.fused.KGReasonModel`)::

    text      its news sentences + its verbalized facts ("It guarantees C00017, which defaulted.")
    graph     its ``hops``-hop ego subgraph of the company graph (company = seed node); node inputs are
              the nodes' scaled attributes (``node_features: attributes``), their kind, and what is known of
              their outcome (``node_status``: a company of a known period that defaulted / survived; the
              company being scored is always ``unknown``)
    features  its scaled tabular features (monotone ones enter the model through a sign-constrained term)
    label     ``default`` / ``survived``

Outcomes are "known" only for ``known_rows`` (by default the training companies, whose outcomes precede the
dev and test periods), so no example sees its own label or a label from its own or a later period.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgreason.finance.graph import COMPANY, DEFAULT, NODE_KINDS, SURVIVED, CompanyGraph
from kgreason.tasks.base import TaskMetrics
from kgreason.tasks.sequence import SequenceClassificationTask, gold_labels

if TYPE_CHECKING:
    from torch import Tensor
    from torch_geometric.data import Data

    from kgreason.core.batch import Batch
    from kgreason.core.example import Example
    from kgreason.tasks.base import EncodedDataset

#: Label names of the risk task (label id 1 = default, matching ``CompanyGraph.labels``).
RISK_LABELS = ("survived", "default")
#: ``node_status`` ids (see :data:`kgreason.models.knowledge.NODE_STATUS`).
STATUS_UNKNOWN, STATUS_SURVIVED, STATUS_DEFAULTED = 0, 1, 2
#: Relation whose edges carry the guarantor rule (head guarantees tail's debt).
GUARANTEES = "guarantees"

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class RiskTask(SequenceClassificationTask):
    """Binary default prediction; predictions are default probabilities, scored by AUC (primary), KS, Brier..."""

    name = "risk_classification"
    primary_metric = "auc"

    def __init__(self, *, labels: Sequence[str] = RISK_LABELS) -> None:
        super().__init__(labels=labels)
        if len(self.labels) != 2:
            raise ValueError(f"the risk task has two labels (survived, default), got {self.labels}")

    def decode(self, logits: Tensor, batch: Batch) -> list[float]:
        """Default probabilities, from ``(B, 2)`` logits."""
        return logits.float().softmax(-1)[:, 1].tolist()  # (B,)

    def metrics(self, predictions: Sequence[float], examples: Sequence[Example]) -> TaskMetrics:
        from kgreason.finance.metrics import risk_metrics

        gold = [self.label_id(label) for label in gold_labels(examples, predictions)]
        found = risk_metrics(np.asarray(gold), np.asarray(predictions, dtype=np.float64))
        return TaskMetrics(values=found.to_dict(), primary=self.primary_metric, extra={"count": len(gold)})


# ----------------------------------------------------------------------------------------------- features
@dataclass
class FeatureScaler:
    """Signed ``log1p`` for heavy-tailed columns, then standardisation; missing values become the mean (0).

    Fitted on training rows only; both steps are increasing, so monotone effects keep their direction.
    """

    names: list[str]
    log: list[bool]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, features: np.ndarray, *, names: Sequence[str]) -> FeatureScaler:
        """Fit on ``(n, F)`` training features (``nan`` = missing)."""
        x = np.asarray(features, dtype=np.float64)  # (n, F)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"features of shape {x.shape} do not match {len(names)} names")
        log = []
        for j in range(x.shape[1]):
            col = x[:, j][~np.isnan(x[:, j])]
            log.append(bool(col.size and np.quantile(np.abs(col), 0.99) > 50.0))
        z = _signed_log(x, np.asarray(log))  # (n, F)
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(z, axis=0)) if len(z) else np.zeros(x.shape[1])
            std = np.nan_to_num(np.nanstd(z, axis=0)) if len(z) else np.ones(x.shape[1])
        std = np.where(std > 1e-8, std, 1.0)
        return cls(names=list(names), log=log, mean=mean.tolist(), std=std.tolist())

    def transform(self, features: np.ndarray) -> np.ndarray:
        """``(n, F)`` -> ``(n, F)`` float32, missing values at 0."""
        x = np.asarray(features, dtype=np.float64)  # (n, F)
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise ValueError(
                f"features of shape {x.shape} do not match the scaler's {len(self.names)} columns"
            )
        z = (_signed_log(x, np.asarray(self.log)) - np.asarray(self.mean)) / np.asarray(self.std)  # (n, F)
        return np.nan_to_num(z, nan=0.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScaler:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def _signed_log(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    from kgreason.finance.baselines import signed_log1p

    return signed_log1p(x, columns=np.flatnonzero(mask).tolist())


# ------------------------------------------------------------------------------------------------ texts
def relation_words(name: str) -> str:
    """``legalRepresentativeOf`` -> ``legal representative of``; ``invest_CC`` -> ``invest cc``."""
    return _CAMEL.sub(" ", name).replace("_", " ").lower()


def lawsuit_sentence(suit: Any) -> str:
    """One lawsuit in words."""
    return (
        f"It was the {suit.role} in a {suit.cause} case at a {suit.court} court and {suit.outcome}, "
        f"{suit.months_before} months ago."
    )


@dataclass
class CompanyText:
    """A company's text and where each sentence came from (``news``, ``lawsuit``, ``fact``)."""

    sentences: list[str]
    sources: list[str]

    @property
    def text(self) -> str:
        return (
            " ".join(self.sentences) if self.sentences else "No news or facts are known about this company."
        )


# ---------------------------------------------------------------------------------------------- featurizer
@dataclass
class FeaturizerConfig:
    """How companies become examples.

    Attributes:
        hops: radius of each company's ego subgraph.
        max_nodes: cap on ego-subgraph nodes (a capped hop keeps its best-connected nodes).
        max_news: news sentences per company text.
        max_facts: verbalized graph facts per company text (facts about known defaults first).
        max_lawsuits: verbalized lawsuits per company text (most recent first).
        monotone: use the graph's ``monotone`` map (signed features enter only the sign-constrained term).
        guarantor_rule: mark edges to known-defaulted companies the company guarantees
            (``graph.rule_edge_mask``) for the graph rule loss.
    """

    hops: int = 2
    max_nodes: int = 48
    max_news: int = 5
    max_facts: int = 8
    max_lawsuits: int = 3
    monotone: bool = True
    guarantor_rule: bool = True


@dataclass
class CompanyFeaturizer:
    """Turns companies of a :class:`CompanyGraph` into encoded examples (see the module docstring).

    Build with :meth:`build`; ``known`` is a boolean per company row: whose outcome the inputs may show.
    """

    graph: CompanyGraph
    scaler: FeatureScaler
    config: FeaturizerConfig
    known: np.ndarray
    _store: Any = field(default=None, repr=False)
    _neighbours: list[list[tuple[int, int, bool]]] | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        graph: CompanyGraph,
        *,
        config: FeaturizerConfig | None = None,
        scaler: FeatureScaler | None = None,
        known_rows: Sequence[int] | np.ndarray | None = None,
    ) -> CompanyFeaturizer:
        """A featurizer; ``scaler`` is fitted on the training rows and ``known_rows`` default to them."""
        train = graph.rows("train")
        if scaler is None:
            if not len(train):
                raise ValueError(f"{graph.name}: no training companies to fit the feature scaler on")
            scaler = FeatureScaler.fit(graph.features[train], names=graph.feature_names)
        if list(scaler.names) != list(graph.feature_names):
            raise ValueError(
                f"the scaler was fitted on features {scaler.names}, the graph has {graph.feature_names}"
            )
        known = np.zeros(graph.num_companies, dtype=bool)
        known[np.asarray(train if known_rows is None else known_rows, dtype=np.int64)] = True
        known &= graph.labels >= 0
        return cls(graph=graph, scaler=scaler, config=config or FeaturizerConfig(), known=known)

    # ---------------------------------------------------------------------------------------- columns
    @property
    def signs(self) -> list[int]:
        """Monotone sign per feature column (0 when ``monotone`` is off)."""
        if not self.config.monotone:
            return [0] * len(self.graph.feature_names)
        return [int(np.sign(self.graph.monotone.get(name, 0))) for name in self.graph.feature_names]

    def scaled_features(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """``(n, F)`` scaled features of company ``rows`` (all when ``None``)."""
        x = self.graph.features if rows is None else self.graph.features[np.asarray(rows, dtype=np.int64)]
        return self.scaler.transform(x)

    def node_attributes(self) -> np.ndarray:
        """``(N, F_free + kinds + 1)`` node inputs: scaled free (non-monotone) features of companies, the node
        kind one-hot, and a has-features flag; monotone features stay out of the graph path."""
        g = self.graph
        free = [j for j, s in enumerate(self.signs) if s == 0]
        out = np.zeros((g.num_nodes, len(free) + len(NODE_KINDS) + 1), dtype=np.float32)  # (N, d)
        out[g.companies, : len(free)] = self.scaled_features()[:, free]
        out[np.arange(g.num_nodes), len(free) + g.kinds.astype(np.int64)] = 1.0
        out[g.companies, -1] = 1.0
        return out

    def node_status(self, *, overrides: dict[int, int] | None = None) -> np.ndarray:
        """``(N,)`` known outcome per node: :data:`STATUS_DEFAULTED` for known companies that defaulted, else
        :data:`STATUS_UNKNOWN`; ``overrides`` sets nodes by node id (what-if scenarios).

        A known company that survived is *not* marked: its label says it never defaulted up to the end of the
        observation window, which lies after the dev and test periods; at scoring time one only knows that it has
        not defaulted yet, which is what ``unknown`` stands for.
        """
        g = self.graph
        status = np.zeros(g.num_nodes, dtype=np.int64)  # (N,)
        rows = np.flatnonzero(self.known & (g.labels == DEFAULT))
        status[g.companies[rows]] = STATUS_DEFAULTED
        for node, value in (overrides or {}).items():
            status[int(node)] = int(value)
        return status

    @property
    def store(self) -> Any:
        if self._store is None:
            self._store = self.graph.to_triple_store()
        return self._store

    # ------------------------------------------------------------------------------------------- texts
    def neighbours(self, node: int) -> list[tuple[int, int, bool]]:
        """``(relation, other node, outgoing)`` of every edge of ``node``."""
        if self._neighbours is None:
            table: list[list[tuple[int, int, bool]]] = [[] for _ in range(self.graph.num_nodes)]
            for h, r, t in self.graph.edges.tolist():
                table[h].append((r, t, True))
                table[t].append((r, h, False))
            self._neighbours = table
        return self._neighbours[node]

    def company_text(self, row: int, *, status: np.ndarray | None = None) -> CompanyText:
        """News sentences, recent lawsuits and graph facts of company ``row`` (see :class:`FeaturizerConfig`)."""
        g, cfg = self.graph, self.config
        status = self.node_status() if status is None else status
        sentences, sources = [], []
        for sentence in g.texts[row][: cfg.max_news]:
            sentences.append(sentence)
            sources.append("news")
        for suit in sorted(g.lawsuits[row], key=lambda s: s.months_before)[: cfg.max_lawsuits]:
            sentences.append(lawsuit_sentence(suit))
            sources.append("lawsuit")
        node = int(g.companies[row])
        groups: dict[tuple[int, bool], list[int]] = {}
        for r, other, outgoing in self.neighbours(node):
            groups.setdefault((r, outgoing), []).append(other)
        facts = []
        for (r, outgoing), others in groups.items():
            others = list(dict.fromkeys(others))
            defaulted = [o for o in others if g.kinds[o] == COMPANY and status[o] == STATUS_DEFAULTED]
            rest = [o for o in others if o not in set(defaulted)]
            facts.append((-len(defaulted), self._fact(r, outgoing, defaulted + rest, len(defaulted))))
        for _, sentence in sorted(facts, key=lambda f: f[0])[: cfg.max_facts]:
            sentences.append(sentence)
            sources.append("fact")
        return CompanyText(sentences=sentences, sources=sources)

    def _fact(self, relation: int, outgoing: bool, others: list[int], defaulted: int) -> str:
        """One relation of the company in words: "It guarantees 3 companies (C1, C2, C3); 1 of them defaulted."."""
        g = self.graph
        words = relation_words(g.relations[relation])
        names = ", ".join(g.nodes[o] for o in others[:3]) + (", ..." if len(others) > 3 else "")
        kinds = {NODE_KINDS[int(g.kinds[o])].lower() for o in others}
        kind = kinds.pop() if len(kinds) == 1 else "node"
        noun = kind if len(others) == 1 else ("companies" if kind == "company" else f"{kind}s")
        count = "" if len(others) == 1 else f"{len(others)} "
        sentence = f"It {words} {count}{noun} {names}" if outgoing else f"{count}{noun} {names} {words} it"
        if defaulted:
            sentence += f"; {defaulted} of them defaulted" if len(others) > 1 else ", which defaulted"
        return sentence[0].upper() + sentence[1:] + "."

    # ------------------------------------------------------------------------------------------ graphs
    def ego_graph(self, row: int, *, status: np.ndarray | None = None) -> Data:
        """The ego subgraph of company ``row``: ``edge_index``, ``edge_type``, ``n_id``, ``seed_mask``,
        ``node_status`` (the company itself unknown) and ``rule_edge_mask``."""
        import torch
        from torch_geometric.data import Data

        node = int(self.graph.companies[row])
        status = self.node_status() if status is None else status
        sub = self.store.subgraph([node], hops=self.config.hops, max_nodes=self.config.max_nodes)
        n_id, edge_index, edge_type = sub.n_id.long(), sub.edge_index.long(), sub.edge_type.long()
        local_status = torch.as_tensor(status, dtype=torch.long)[n_id]  # (n,)
        seed = n_id == node  # (n,)
        local_status[seed] = STATUS_UNKNOWN
        rule = torch.zeros(edge_type.numel(), dtype=torch.bool)  # (e,)
        if self.config.guarantor_rule and GUARANTEES in self.graph.relations:
            gid = self.graph.relations.index(GUARANTEES)
            rule = (
                (edge_type == gid) & seed[edge_index[0]] & (local_status[edge_index[1]] == STATUS_DEFAULTED)
            )  # (e,) the company guarantees a known default
        return Data(
            edge_index=edge_index.contiguous(),
            edge_type=edge_type,
            n_id=n_id,
            seed_mask=seed,
            node_status=local_status,
            rule_edge_mask=rule,
            num_nodes=int(n_id.numel()),
        )

    # ---------------------------------------------------------------------------------------- examples
    def example(self, row: int, *, status: np.ndarray | None = None) -> Example:
        from kgreason.core.example import Example

        g = self.graph
        label = {DEFAULT: "default", SURVIVED: "survived"}.get(int(g.labels[row]))
        return Example(
            text=self.company_text(row, status=status).text,
            label=label,
            uid=g.nodes[int(g.companies[row])],
            metadata={"row": int(row), "split": str(g.splits[row]), "period": int(g.periods[row])},
        )

    def encode(
        self,
        rows: Sequence[int] | np.ndarray,
        *,
        task: RiskTask,
        tokenizer: Any,
        max_length: int,
        graphs: bool = True,
        status: np.ndarray | None = None,
        features: np.ndarray | None = None,
        quiet: bool = False,
    ) -> EncodedDataset:
        """Encoded examples of company ``rows``: tokens, features, and (``graphs``) ego subgraphs.

        ``status`` / ``features`` replace the graph's (interventions; for edges, featurize
        :meth:`with_graph` of an edited graph); labels may be unknown. ``quiet``: no warning about truncated
        texts (scoring).
        """
        from kgreason.tasks.base import EncodedDataset

        rows = np.asarray(rows, dtype=np.int64)
        status = self.node_status() if status is None else status
        examples = [self.example(int(r), status=status) for r in rows]
        if quiet:  # scoring: no warning per request about long texts
            from kgreason.tasks.base import EncodedDataset as Encoded

            items = [
                task.encode(example, tokenizer=tokenizer, max_length=max_length, index=i)
                for i, example in enumerate(examples)
            ]
            encoded = Encoded(examples=examples, encoded=items, truncated=sum(i.truncated for i in items))
        else:
            encoded = task.encode_all(examples, tokenizer=tokenizer, max_length=max_length, desc="companies")
        x = self.scaler.transform((self.graph.features if features is None else features)[rows])  # (n, F)
        items = []
        for i, (row, item) in enumerate(zip(rows.tolist(), encoded.encoded, strict=True)):
            graph = self.ego_graph(row, status=status) if graphs else None
            items.append(dataclasses.replace(item, features=x[i].tolist(), graph=graph))
        return EncodedDataset(examples=examples, encoded=items, truncated=encoded.truncated)

    def with_graph(self, graph: CompanyGraph) -> CompanyFeaturizer:
        """The same featurizer (scaler, known outcomes) over an edited graph with the same companies."""
        if graph.num_companies != self.graph.num_companies:
            raise ValueError("an edited graph must keep the same companies")
        return CompanyFeaturizer(graph=graph, scaler=self.scaler, config=self.config, known=self.known.copy())

    # ------------------------------------------------------------------------------------------- state
    def to_dict(self) -> dict[str, Any]:
        return {
            "scaler": self.scaler.to_dict(),
            "config": dataclasses.asdict(self.config),
            "known_rows": np.flatnonzero(self.known).tolist(),
        }

    def save(self, path: str | Path) -> Path:
        from kgreason.core.atomic import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, graph: CompanyGraph) -> CompanyFeaturizer:
        """The featurizer :meth:`save` wrote, for ``graph``; a damaged file is a ``FinanceDataError`` naming it."""
        from kgreason.finance.errors import FinanceDataError
        from kgreason.finance.runfiles import RETRAIN, finite_numbers, read_json_object

        path = Path(path)
        expected = (
            "the featurizer written by `kgreason finance train`: an object with 'scaler' (names, log, mean, "
            "std), 'config' and 'known_rows'"
        )
        data = read_json_object(path, expected=expected)

        def bad(detail: str, what: str = expected) -> FinanceDataError:
            return FinanceDataError(detail, path=path, expected=what)

        missing = [key for key in ("scaler", "config", "known_rows") if key not in data]
        if missing:
            raise bad(f"missing {', '.join(repr(k) for k in missing)}")
        scaler, config, known = data["scaler"], data["config"], data["known_rows"]
        fields = [f.name for f in dataclasses.fields(FeatureScaler)]
        if not isinstance(scaler, dict) or sorted(scaler) != sorted(fields):
            raise bad("'scaler' is not a feature scaler", f"an object with exactly {', '.join(fields)}")
        names = scaler["names"]
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise bad("'scaler.names' is not a list of feature names")
        count = len(names)
        if not (isinstance(scaler["log"], list) and len(scaler["log"]) == count):
            raise bad(f"'scaler.log' is not {count} booleans")
        if not all(isinstance(flag, bool) for flag in scaler["log"]):
            raise bad(f"'scaler.log' is not {count} booleans")
        if not finite_numbers(scaler["mean"], count=count):
            raise bad(f"'scaler.mean' is not {count} finite numbers")
        if not finite_numbers(scaler["std"], count=count) or any(v <= 0 for v in scaler["std"]):
            raise bad(f"'scaler.std' is not {count} positive finite numbers")
        if names != list(graph.feature_names):
            raise bad(
                f"fitted on features {names}, but the run's graph has {list(graph.feature_names)}",
                f"the featurizer of this run's graph ({RETRAIN})",
            )
        config_fields = {f.name: f.type for f in dataclasses.fields(FeaturizerConfig)}
        if not isinstance(config, dict) or set(config) - set(config_fields):
            unknown = sorted(set(config) - set(config_fields)) if isinstance(config, dict) else []
            raise bad(
                f"'config' is not a featurizer config{f' (unknown keys {unknown})' if unknown else ''}",
                f"an object with keys among {', '.join(config_fields)}",
            )
        for key, value in config.items():
            want = bool if config_fields[key] in (bool, "bool") else int
            if not isinstance(value, want) or (want is int and (isinstance(value, bool) or value < 0)):
                raise bad(
                    f"'config.{key}' is {value!r}", f"{'a boolean' if want is bool else 'an integer >= 0'}"
                )
        num = graph.num_companies
        if not (
            isinstance(known, list)
            and all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < num for r in known)
        ):
            raise bad(f"'known_rows' is not a list of company rows (integers 0..{num - 1})")
        return cls.build(
            graph,
            config=FeaturizerConfig(**config),
            scaler=FeatureScaler.from_dict(scaler),
            known_rows=known,
        )
