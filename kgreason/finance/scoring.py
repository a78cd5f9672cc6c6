"""RiskScorer: a trained risk model over its company graph — scores, reason codes, explanations, what-ifs.

Explanations are occlusion attributions, each a small intervention scored in one batched forward pass:

* features: captum's ``FeatureAblation`` — each scaled feature set to its training mean (0);
* neighbours: the edges between the company and one direct neighbour removed from its ego subgraph;
* relations: every edge of one relation type removed from the ego subgraph;
* facts: one sentence removed from the company's text (models with a text encoder).

A contribution is the calibrated default probability minus the probability without that part, so a positive
contribution is a reason the risk is higher. Reason codes are ``F:<feature>``, ``N:<relation>:<node>``,
``R:<relation>``, ``T:<sentence index>``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.finance.dataset import STATUS_DEFAULTED, STATUS_UNKNOWN, relation_words
from kgreason.finance.graph import COMPANY
from kgreason.finance.records import (
    SCENARIOS,
    CompanyScore,
    Explanation,
    FeatureOverrideError,
    Reason,
    Scenario,
    WhatIf,
)

#: Feature columns holding an amount of capital, which an override may not make negative.
CAPITAL_COLUMNS = ("registered_capital", "paid_in_capital", "capital")


class RiskScorer:
    """Scores companies of the model's graph (implements :class:`kgreason.finance.records.Scorer`).

    Args:
        prepared: the model, featurizer and graph (:func:`kgreason.finance.training.prepare_risk_model`).
        calibrator: maps raw scores to calibrated probabilities.
        model_version: name + weights hash, written next to every score.
        device: ``auto`` (cuda when present) or a torch device name.
        batch_size: companies per forward pass.

    Calls are serialised with a lock (the model and its caches are not thread-safe).
    """

    def __init__(
        self,
        *,
        prepared: Any,
        calibrator: Any,
        model_version: str,
        device: str = "auto",
        batch_size: int = 64,
    ) -> None:
        from kgreason.core.device import resolve_device

        self.prepared = prepared
        self.calibrator = calibrator
        self.model_version = model_version
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.model = prepared.model.to(self.device).eval()
        self._rows = prepared.graph.company_rows()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, run_dir: str | Path, *, device: str = "auto") -> RiskScorer:
        """The scorer of a run folder written by ``kgreason finance train``.

        Every file is checked as it is read: a missing, truncated or damaged one raises a
        :class:`~kgreason.core.errors.KGReasonError` naming it and what it should hold.
        """
        from kgreason.core.config import build_config
        from kgreason.core.errors import ConfigError, KGReasonError, ModelNotAvailableError
        from kgreason.finance.calibration import Calibrator
        from kgreason.finance.config import RiskConfig
        from kgreason.finance.dataset import CompanyFeaturizer
        from kgreason.finance.errors import FinanceDataError
        from kgreason.finance.runfiles import RETRAIN, check_safetensors, read_json_object, read_yaml_mapping
        from kgreason.finance.training import load_company_graph, prepare_risk_model
        from kgreason.models.fused import KGReasonModel

        run = Path(run_dir)
        needed = [
            run / n for n in ("config.yaml", "metrics.json", "featurizer.json", "calibrator.json", "best")
        ]
        missing = [p.name for p in needed if not p.exists()]
        if missing:
            raise ModelNotAvailableError(
                f"{run}: not a finished risk run (missing {', '.join(missing)}); train one with "
                "`kgreason finance train CONFIG`"
            )
        raw = read_yaml_mapping(
            run / "config.yaml", expected="the risk config written by `kgreason finance train`"
        )
        try:
            config = build_config(RiskConfig, raw)
        except ConfigError as err:
            raise ConfigError(f"{run / 'config.yaml'}: {err}") from None
        metrics_path = run / "metrics.json"
        metrics = read_json_object(metrics_path, expected="the metrics written by `kgreason finance train`")
        version = metrics.get("model_version")
        if not isinstance(version, str) or not version:
            raise FinanceDataError(
                f"'model_version' is {version!r}",
                path=metrics_path,
                expected=f"the model's name + hash ({RETRAIN})",
            )
        calibrator = Calibrator.load(run / "calibrator.json")
        weights = run / "best" / "model.safetensors"
        if not weights.is_file():
            raise ModelNotAvailableError(
                f"{weights}: not found; a finished risk run has its weights there ({RETRAIN})"
            )
        check_safetensors(weights)
        graph = load_company_graph(config.data)
        try:
            model = KGReasonModel.from_pretrained(run / "best")
        except KGReasonError:
            raise
        except Exception as err:  # anything the shared loader does not name: name the folder it read
            raise ModelNotAvailableError(
                f"{run / 'best'}: cannot load the model ({type(err).__name__}: {err}); expected the folder "
                f"written by `kgreason finance train` ({RETRAIN})"
            ) from err
        prepared = prepare_risk_model(config, graph=graph, model=model)
        prepared.featurizer = CompanyFeaturizer.load(run / "featurizer.json", graph=graph)
        return cls(prepared=prepared, calibrator=calibrator, model_version=version, device=device)

    # ------------------------------------------------------------------------------------------ lookups
    def company_ids(self) -> list[str]:
        return list(self._rows)

    def row_of(self, company_id: str) -> int:
        try:
            return self._rows[company_id]
        except KeyError:
            raise KeyError(f"unknown company id {company_id!r}") from None

    def rows_of(self, company_ids: Sequence[str]) -> list[int]:
        unknown = [c for c in company_ids if c not in self._rows]
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise KeyError(f"unknown company id(s): {shown}")
        return [self._rows[c] for c in company_ids]

    # ------------------------------------------------------------------------------------------ forward
    def _forward(self, items: Sequence[Any]) -> np.ndarray:
        """Raw default probabilities of encoded examples."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(items), self.batch_size):
                batch = self.prepared.collator(list(items[start : start + self.batch_size])).to(self.device)
                logits = self.model(dataclasses.replace(batch, labels=None)).logits  # (B, 2)
                out.append(logits.float().softmax(-1)[:, 1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _encode(self, rows: Sequence[int], *, featurizer: Any = None, **kwargs: Any) -> list[Any]:
        prepared = self.prepared
        featurizer = featurizer or prepared.featurizer
        dataset = featurizer.encode(
            rows,
            task=prepared.task,
            tokenizer=prepared.tokenizer,
            max_length=prepared.max_length,
            graphs=self.model.reasoner is not None,
            quiet=True,
            **kwargs,
        )
        return list(dataset.encoded)

    def probabilities(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(raw, calibrated)`` default probabilities of company rows."""
        raw = self._forward(self._encode(rows))
        return raw, self.calibrator.transform(raw)

    # ------------------------------------------------------------------------------------------ scoring
    def score(
        self,
        company_ids: list[str],
        *,
        top_reasons: int = 3,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
    ) -> list[CompanyScore]:
        """Calibrated scores with the top ``top_reasons`` reasons (0: none, faster).

        The one scoring call of ``kgreason finance score`` and the service's ``POST /score``. ``overrides``
        (``{company_id: {feature: value}}``) replace the graph's feature values of scored companies for this
        call only (scores and reasons both see them).

        Raises:
            KeyError: an unknown company id.
            FeatureOverrideError: an override names no feature of the model, a company not scored, or gives a
                capital column a negative value.
        """
        rows = self.rows_of(company_ids)
        with self._lock, self._overridden(company_ids, rows, overrides or {}):
            raw, cal = self.probabilities(rows)
            scores = []
            for cid, row, r, c in zip(company_ids, rows, raw.tolist(), cal.tolist(), strict=True):
                reasons = (
                    self._explain(row, top=top_reasons).ranked(top=top_reasons) if top_reasons > 0 else []
                )
                scores.append(
                    CompanyScore(
                        company_id=cid,
                        score=r,
                        probability=c,
                        reasons=reasons,
                        model_version=self.model_version,
                    )
                )
        return scores

    @contextmanager
    def _overridden(
        self, company_ids: Sequence[str], rows: Sequence[int], overrides: Mapping[str, Mapping[str, float]]
    ) -> Iterator[None]:
        """The featurizer and graph with ``overrides`` in place while the block runs, then the originals."""
        prepared = self.prepared
        g = prepared.graph
        extra = sorted(set(overrides) - set(company_ids))
        if extra:
            raise FeatureOverrideError(f"overrides for companies that are not scored: {extra}")
        columns = {k for values in overrides.values() for k in values}
        unknown = sorted(columns - set(g.feature_names))
        if unknown:
            raise FeatureOverrideError(
                f"columns {unknown} are not features of the model ({', '.join(g.feature_names)})"
            )
        if not columns:
            yield
            return
        features = g.features.copy()
        for cid, row in zip(company_ids, rows, strict=True):
            for key, value in overrides.get(cid, {}).items():
                if key in CAPITAL_COLUMNS and value < 0:
                    raise FeatureOverrideError(f"company {cid!r}: {key} is negative ({value})")
                features[row, g.feature_names.index(key)] = value
        featurizer = prepared.featurizer
        prepared.featurizer = featurizer.with_graph(g.with_features(features))
        prepared.graph = prepared.featurizer.graph
        try:
            yield
        finally:
            prepared.featurizer, prepared.graph = featurizer, g

    def explain(self, company_id: str, *, top: int = 10) -> Explanation:
        row = self.row_of(company_id)
        with self._lock:
            return self._explain(row, top=top)

    def _explain(self, row: int, *, top: int) -> Explanation:
        prepared = self.prepared
        g, featurizer = prepared.graph, prepared.featurizer
        base_item = self._encode([row])[0]
        variants: list[tuple[str, str, str, Any]] = []  # (kind, code, text, item)
        graph = base_item.graph
        node = int(g.companies[row])
        status = featurizer.node_status()
        if graph is not None and graph.edge_index.numel():
            seed_local = int(graph.seed_mask.nonzero()[0])
            ends = graph.edge_index  # (2, e)
            touching = (ends[0] == seed_local) | (ends[1] == seed_local)  # (e,)
            others: dict[int, int] = {}
            for e in touching.nonzero().squeeze(-1).tolist():
                other = int(ends[1, e]) if int(ends[0, e]) == seed_local else int(ends[0, e])
                others.setdefault(other, int(graph.edge_type[e]))
            for other, relation in list(others.items())[:12]:
                keep = ~(touching & ((ends[0] == other) | (ends[1] == other)))
                gid = int(graph.n_id[other])
                state = (
                    ", which defaulted" if status[gid] == STATUS_DEFAULTED and g.kinds[gid] == COMPANY else ""
                )
                words = relation_words(g.relations[relation])
                variants.append(
                    (
                        "neighbour",
                        f"N:{g.relations[relation]}:{g.nodes[gid]}",
                        f"Linked to {g.nodes[gid]} ({words}){state}",
                        _with_edges(base_item, keep),
                    )
                )
            for relation in sorted(set(graph.edge_type.tolist())):
                keep = graph.edge_type != relation
                words = relation_words(g.relations[relation])
                variants.append(
                    (
                        "relation",
                        f"R:{g.relations[relation]}",
                        f"Its '{words}' links",
                        _with_edges(base_item, keep),
                    )
                )
        if self.model.encoder is not None:
            text = featurizer.company_text(row, status=status)
            for i, sentence in enumerate(text.sentences[:16]):
                rest = text.sentences[:i] + text.sentences[i + 1 :]
                example = dataclasses.replace(
                    featurizer.example(row, status=status),
                    text=" ".join(rest) if rest else "No news or facts are known about this company.",
                )
                encoded = prepared.task.encode(
                    example, tokenizer=prepared.tokenizer, max_length=prepared.max_length
                )
                item = dataclasses.replace(
                    base_item, input_ids=encoded.input_ids, token_type_ids=encoded.token_type_ids
                )
                variants.append(("fact", f"T:{i}", f'"{sentence}" ({text.sources[i]})', item))
        raw = self._forward([base_item] + [v[3] for v in variants])
        cal = self.calibrator.transform(raw)
        base = float(cal[0])
        groups: dict[str, list[Reason]] = {"neighbour": [], "relation": [], "fact": []}
        for (kind, code, words, _), value in zip(variants, cal[1:].tolist(), strict=True):
            groups[kind].append(Reason(code=code, kind=kind, text=words, contribution=base - value))
        features = self._feature_reasons(base_item, row)
        ranked = {k: sorted(v, key=lambda r: -abs(r.contribution))[:top] for k, v in groups.items()}
        return Explanation(
            company_id=g.nodes[node],
            probability=base,
            model_version=self.model_version,
            features=sorted(features, key=lambda r: -abs(r.contribution))[:top],
            neighbours=ranked["neighbour"],
            relations=ranked["relation"],
            facts=ranked["fact"],
        )

    def _feature_reasons(self, item: Any, row: int) -> list[Reason]:
        """Captum ``FeatureAblation`` of the scaled features (baseline: the training mean, 0)."""
        import torch
        from captum.attr import FeatureAblation

        g = self.prepared.graph
        x = torch.tensor([item.features], dtype=torch.float32)  # (1, F)

        def forward(features: torch.Tensor) -> torch.Tensor:
            items = [dataclasses.replace(item, features=f.tolist()) for f in features]
            raw = self._forward(items)
            return torch.from_numpy(self.calibrator.transform(raw)).float()  # (n,)

        attributions = FeatureAblation(forward).attribute(
            x, baselines=0.0, perturbations_per_eval=x.shape[1]
        )[0]  # (F,)
        reasons = []
        for j, name in enumerate(g.feature_names):
            value = g.features[row, j]
            shown = "missing" if np.isnan(value) else f"{float(value):g}"
            reasons.append(
                Reason(
                    code=f"F:{name}",
                    kind="feature",
                    text=f"{name.replace('_', ' ')} is {shown}",
                    contribution=float(attributions[j]),
                )
            )
        return reasons

    # ------------------------------------------------------------------------------------------ what-if
    def what_if(self, company_id: str, scenario: Scenario) -> WhatIf:
        """The calibrated probability before and after ``scenario`` (see :class:`Scenario`)."""
        if scenario.kind not in SCENARIOS:
            raise ValueError(f"scenario kind must be one of {', '.join(SCENARIOS)}, got {scenario.kind!r}")
        row = self.row_of(company_id)
        prepared = self.prepared
        g, featurizer = prepared.graph, prepared.featurizer
        with self._lock:
            before = float(self.probabilities([row])[1][0])
            if scenario.kind in ("neighbour_defaults", "neighbour_survives"):
                target = self._node(scenario.target)
                if g.kinds[target] != COMPANY:
                    raise ValueError(f"{scenario.target!r} is not a company; only companies default")
                if target == int(g.companies[row]):
                    raise ValueError("a what-if sets a neighbour's outcome, not the company's own")
                # "survives": not known to have defaulted (the inputs never mark survivors, see node_status)
                value = STATUS_DEFAULTED if scenario.kind == "neighbour_defaults" else STATUS_UNKNOWN
                status = featurizer.node_status(overrides={target: value})
                after_raw = self._forward(self._encode([row], status=status))
            elif scenario.kind == "remove_edge":
                target = self._node(scenario.target)
                node = int(g.companies[row])
                e = g.edges
                pair = ((e[:, 0] == node) & (e[:, 2] == target)) | ((e[:, 0] == target) & (e[:, 2] == node))
                if scenario.relation is not None:
                    pair &= e[:, 1] == g.relation_id(scenario.relation)
                if not pair.any():
                    raise ValueError(
                        f"no {scenario.relation or 'edge'} between {company_id!r} and {scenario.target!r} to remove"
                    )
                edited = featurizer.with_graph(g.with_edges(e[~pair], g.edge_weight[~pair]))
                after_raw = self._forward(self._encode([row], featurizer=edited))
            else:
                if scenario.target not in g.feature_names:
                    raise ValueError(
                        f"unknown feature {scenario.target!r}; features: {', '.join(g.feature_names)}"
                    )
                if scenario.value is None or not np.isfinite(scenario.value):
                    raise ValueError("set_feature needs a finite value")
                features = g.features.copy()
                features[row, g.feature_names.index(scenario.target)] = scenario.value
                after_raw = self._forward(self._encode([row], features=features))
            after = float(self.calibrator.transform(after_raw)[0])
        return WhatIf(
            company_id=company_id,
            scenario=scenario,
            before=before,
            after=after,
            model_version=self.model_version,
        )

    def _node(self, key: str) -> int:
        index = self.prepared.graph.node_index()
        if key not in index:
            raise KeyError(f"unknown node id {key!r}")
        return index[key]


def _with_edges(item: Any, keep: Any) -> Any:
    """A copy of an encoded example whose graph keeps only the ``keep`` edges (and no rule marks on others)."""
    graph = item.graph.clone()
    graph.edge_index = graph.edge_index[:, keep]
    graph.edge_type = graph.edge_type[keep]
    graph.rule_edge_mask = graph.rule_edge_mask[keep]
    return dataclasses.replace(item, graph=graph)
