"""The structural default model of the company-graph generator, and the interventional truth it implies.

Every company ``i`` has an intrinsic default logit (``knowledge/finance/generator.md`` documents each term)::

    z_i = b0 + sum_f beta_f * (x_if - center_f) / scale_f        five fundamentals (tabular features)
             + beta_news * shock_i                               latent news shock (seen only through text)
             + beta_law * lawsuits_lost_defendant_i              lawsuits (features and lawsuit records)
             + industry_effect[industry_i] + region_effect[region_i]   (graph: inIndustry / inRegion)

and defaults in an independent cascade over *exposure edges* ``j -> i`` (``j``'s default hurts ``i``)::

    I_i ~ Bernoulli(sigmoid(z_i))                       intrinsic default (round 0)
    live_e ~ Bernoulli(s_channel(e))                    one trial per exposure edge e = (j -> i)
    D^r = D^(r-1) or [some live edge j -> i with j newly defaulted in round r - 1],   r = 1 .. rounds
    label_i = D_i^rounds

so a company that survived round ``r - 1`` defaults in round ``r`` with probability
``1 - prod_j (1 - s_j)`` over its neighbours ``j`` that defaulted in round ``r - 1``. The channels
(:data:`CHANNELS`) read the graph's company-to-company edges: a guarantor is exposed to the company it
guarantees, a subsidiary to its parent and a parent to its subsidiary (``owns``), a customer to its supplier and
a supplier to its customer (``supplies``).

Interventions ``do(D_j = v)`` fix company ``j``'s outcome from round 0 on (``v = 1``: it is a default source;
``v = 0``: it never defaults, so it passes nothing on). Monte Carlo truth holds the graph, the fundamentals,
the lawsuits and the shocks (hence every ``z_i``) fixed and resamples the Bernoulli draws (intrinsic defaults
and live edges); the arms of a contrast share their draws (common random numbers), which leaves each
probability unbiased and makes an effect on a company that ``j`` cannot reach exactly zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from kgreason.core.errors import ConfigError

if TYPE_CHECKING:
    from kgreason.finance.graph import CompanyGraph

#: The five fundamentals in the structural equation, with the (center, scale) that standardises each.
FUNDAMENTALS: dict[str, tuple[float, float]] = {
    "log_capital": (2.5, 1.1),
    "leverage": (0.55, 0.2),
    "return_on_assets": (0.04, 0.065),
    "liquidity": (1.45, 0.55),
    "age_years": (10.0, 8.0),
}
#: beta_f per standardised unit: more debt raises the risk; size, profit, liquidity and age lower it.
DEFAULT_COEFFICIENTS: dict[str, float] = {
    "log_capital": -0.3,
    "leverage": 0.9,
    "return_on_assets": -0.6,
    "liquidity": -0.4,
    "age_years": -0.25,
}
#: Industry effects on the logit (the generator uses the first ``num_industries``).
INDUSTRY_EFFECTS: dict[str, float] = {
    "construction": 0.45,
    "real_estate": 0.4,
    "manufacturing": 0.1,
    "wholesale": 0.05,
    "retail": 0.15,
    "transport": 0.1,
    "technology": -0.15,
    "healthcare": -0.25,
    "utilities": -0.4,
    "agriculture": 0.2,
    "mining": 0.3,
    "hospitality": 0.25,
}
#: Region effects on the logit (the generator uses the first ``num_regions``).
REGION_EFFECTS: dict[str, float] = {
    "north": 0.1,
    "south": -0.1,
    "east": -0.2,
    "west": 0.2,
    "central": 0.0,
    "northeast": 0.3,
    "northwest": 0.15,
    "southwest": 0.05,
    "southeast": -0.15,
    "coastal": -0.25,
}


@dataclass(frozen=True)
class Channel:
    """A contagion channel: which relation it reads and which end is exposed to the other end's default."""

    name: str
    relation: str
    source: str  # "head" or "tail": the end whose default spreads
    meaning: str


#: Contagion channels, in the order of :attr:`CausalWorld.exposure_channel` ids.
CHANNELS: tuple[Channel, ...] = (
    Channel("guarantee", "guarantees", "tail", "the guarantor of a defaulted company pays its debt"),
    Channel("parent", "owns", "head", "the subsidiary of a defaulted parent loses its funding"),
    Channel("subsidiary", "owns", "tail", "the parent of a defaulted subsidiary writes off its stake"),
    Channel("customer", "supplies", "head", "the customer of a defaulted supplier loses its supply"),
    Channel("supplier", "supplies", "tail", "the supplier of a defaulted customer loses its receivables"),
)
CHANNEL_NAMES = tuple(c.name for c in CHANNELS)
#: Relation name -> its main channel (what ``true_contagion_effect(relation=...)`` measures by default).
RELATION_CHANNEL = {"guarantees": "guarantee", "owns": "parent", "supplies": "customer"}

_CHUNK_CELLS = 4_000_000  # random draws per block (memory bound)


@dataclass(frozen=True, kw_only=True)
class CausalParams:
    """Coefficients and contagion strengths of the structural default model.

    Attributes:
        default_rate: expected share of defaults (intrinsic + contagion) the intercept is solved for.
        intercept: ``b0``; ``None`` solves it for ``default_rate`` on the generated companies.
        coefficients: ``beta_f`` per standardised fundamental (keys of :data:`FUNDAMENTALS`).
        news: ``beta_news``, logit per unit of the latent news shock (standard normal).
        lawsuits_lost_defendant: ``beta_law``, logit per lawsuit lost as defendant.
        industry_effects / region_effects: logit shift of each industry / region.
        guarantee / parent / subsidiary / customer / supplier: contagion strength of each channel
            (probability that one defaulted neighbour drags the exposed company down).
        rounds: contagion rounds after the intrinsic defaults.
    """

    default_rate: float = 0.2
    intercept: float | None = None
    coefficients: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COEFFICIENTS))
    news: float = 1.2
    lawsuits_lost_defendant: float = 0.3
    industry_effects: dict[str, float] = field(default_factory=lambda: dict(INDUSTRY_EFFECTS))
    region_effects: dict[str, float] = field(default_factory=lambda: dict(REGION_EFFECTS))
    guarantee: float = 0.35
    parent: float = 0.2
    subsidiary: float = 0.1
    customer: float = 0.08
    supplier: float = 0.08
    rounds: int = 3

    def __post_init__(self) -> None:
        if not 0.0 < self.default_rate < 1.0:
            raise ConfigError(f"default_rate must be in (0, 1), got {self.default_rate}")
        if set(self.coefficients) != set(FUNDAMENTALS):
            raise ConfigError(
                f"coefficients must name exactly {', '.join(FUNDAMENTALS)}, got {', '.join(self.coefficients)}"
            )
        for name in CHANNEL_NAMES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"contagion strength {name} must be in [0, 1], got {value}")
        if self.rounds < 0:
            raise ConfigError(f"rounds must be >= 0, got {self.rounds}")
        if self.lawsuits_lost_defendant < 0 or self.coefficients["leverage"] < 0:
            raise ConfigError(
                "leverage and lawsuits_lost_defendant must not lower the risk (monotone features)"
            )

    def strength(self, channel: str) -> float:
        if channel not in CHANNEL_NAMES:
            raise ConfigError(f"unknown channel {channel!r}; channels: {', '.join(CHANNEL_NAMES)}")
        return float(getattr(self, channel))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fundamental_logit(params: CausalParams, fundamentals: np.ndarray) -> np.ndarray:
    """``sum_f beta_f (x_f - center_f) / scale_f`` of ``fundamentals`` (columns in :data:`FUNDAMENTALS` order)."""
    center = np.array([c for c, _ in FUNDAMENTALS.values()])  # (5,)
    scale = np.array([s for _, s in FUNDAMENTALS.values()])  # (5,)
    beta = np.array([params.coefficients[name] for name in FUNDAMENTALS])  # (5,)
    return ((np.asarray(fundamentals, dtype=np.float64) - center) / scale) @ beta  # (C,)


@dataclass
class CausalWorld:
    """The latent side of a generated company graph: everything the structural model needs, per company row.

    Shapes: ``C`` companies, ``E`` exposure edges (one per company-to-company graph edge and channel).

    Attributes:
        params: the model's parameters, with the solved ``intercept``.
        company_keys: (C,) company node keys (``graph.company_ids()``).
        fundamentals: (C, 5) float64, columns in :data:`FUNDAMENTALS` order.
        lawsuits_lost_defendant: (C,) float64 lawsuits lost as defendant.
        shock: (C,) float64 latent news shock (not a feature; it drives the sentiment of the company's texts).
        industry / region: (C,) int64 index into ``industries`` / ``regions``.
        logit: (C,) float64 intrinsic logit ``z_i``.
        exposure_source / exposure_target: (E,) int64 company rows ``j -> i`` (``j``'s default exposes ``i``).
        exposure_channel: (E,) int8 index into :data:`CHANNELS`.
        exposure_edge: (E,) int64 the graph edge (row of ``graph.edges``) the exposure comes from.
        intrinsic_default: (C,) bool the realised intrinsic draws behind the graph's labels.
        default_round: (C,) int8 realised round of default (0 intrinsic, ``r`` contagion round, -1 survived).
    """

    params: CausalParams
    company_keys: list[str]
    fundamentals: np.ndarray
    lawsuits_lost_defendant: np.ndarray
    shock: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    industries: list[str]
    regions: list[str]
    logit: np.ndarray
    exposure_source: np.ndarray
    exposure_target: np.ndarray
    exposure_channel: np.ndarray
    exposure_edge: np.ndarray
    intrinsic_default: np.ndarray
    default_round: np.ndarray

    @property
    def num_companies(self) -> int:
        return int(self.logit.shape[0])

    @property
    def intrinsic_probability(self) -> np.ndarray:
        """(C,) ``sigmoid(z_i)``: the default probability of a company alone (no contagion)."""
        return 1.0 / (1.0 + np.exp(-self.logit))

    @property
    def exposure_strength(self) -> np.ndarray:
        """(E,) the contagion strength of each exposure edge."""
        strengths = np.array([self.params.strength(name) for name in CHANNEL_NAMES])  # (5,)
        return strengths[self.exposure_channel]

    @property
    def defaults(self) -> np.ndarray:
        """(C,) bool the realised outcome (the graph's labels)."""
        return self.default_round >= 0

    def company_row(self, key: str) -> int:
        try:
            return self.company_keys.index(key)
        except ValueError:
            raise KeyError(f"no company {key!r} in the causal world") from None

    def structural_logit(
        self, *, fundamentals: np.ndarray | None = None, lawsuits: np.ndarray | None = None
    ) -> np.ndarray:
        """(C,) ``z`` recomputed from (possibly edited) fundamentals / lawsuit counts; shocks and effects kept."""
        params = self.params
        x = self.fundamentals if fundamentals is None else fundamentals
        law = self.lawsuits_lost_defendant if lawsuits is None else lawsuits
        industry = np.array([params.industry_effects[n] for n in self.industries])[self.industry]  # (C,)
        region = np.array([params.region_effects[n] for n in self.regions])[self.region]  # (C,)
        base = fundamental_logit(params, x) + params.news * self.shock + params.lawsuits_lost_defendant * law
        return (params.intercept or 0.0) + base + industry + region  # (C,)

    def with_feature(self, row: int, name: str, value: float) -> CausalWorld:
        """A copy with company ``row``'s fundamental or ``lawsuits_lost_defendant`` set to ``value``.

        Only ``z_row`` changes: the other inputs of the logit (lawsuit records, shock) keep their drawn values, so
        a probe reads the feature's direct effect. The realised draws (``default_round``) are the original ones.
        """
        fundamentals = self.fundamentals.copy()
        lawsuits = self.lawsuits_lost_defendant.copy()
        if name == "lawsuits_lost_defendant":
            lawsuits[row] = value
        elif name in FUNDAMENTALS:
            fundamentals[row, list(FUNDAMENTALS).index(name)] = value
        else:
            raise KeyError(
                f"{name!r} is not a cause in the model; causes: {', '.join(FUNDAMENTALS)}, "
                "lawsuits_lost_defendant"
            )
        world = replace(self, fundamentals=fundamentals, lawsuits_lost_defendant=lawsuits)
        world.logit = world.structural_logit()
        return world

    def without_edges(self, edge_ids: Sequence[int] | np.ndarray) -> CausalWorld:
        """A copy without the exposures of the given graph edges (rows of ``graph.edges``): ``remove_edge``."""
        keep = ~np.isin(self.exposure_edge, np.asarray(edge_ids, dtype=np.int64))  # (E,)
        return replace(
            self,
            exposure_source=self.exposure_source[keep],
            exposure_target=self.exposure_target[keep],
            exposure_channel=self.exposure_channel[keep],
            exposure_edge=self.exposure_edge[keep],
        )


def exposure_edges(graph: CompanyGraph) -> dict[str, np.ndarray]:
    """The exposure edges ``j -> i`` of every channel in ``graph``'s company-to-company edges.

    Returns arrays ``source``, ``target`` (company rows), ``channel`` (ids into :data:`CHANNELS`), ``edge``
    (graph edge rows); edges with a non-company end (a person owning a company) and self-loops expose nobody.
    """
    row_of = np.full(graph.num_nodes, -1, dtype=np.int64)  # (N,)
    row_of[graph.companies] = np.arange(graph.num_companies)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for cid, channel in enumerate(CHANNELS):
        if channel.relation not in graph.relations:
            continue
        rid = graph.relation_id(channel.relation)
        ids = np.flatnonzero(graph.edges[:, 1] == rid)  # (m,)
        head, tail = row_of[graph.edges[ids, 0]], row_of[graph.edges[ids, 2]]  # (m,)
        ok = (head >= 0) & (tail >= 0) & (head != tail)
        src, dst = (tail, head) if channel.source == "tail" else (head, tail)
        parts.append((src[ok], dst[ok], np.full(int(ok.sum()), cid, dtype=np.int8), ids[ok]))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return {"source": empty, "target": empty, "channel": np.empty(0, dtype=np.int8), "edge": empty}
    return {
        "source": np.concatenate([p[0] for p in parts]),
        "target": np.concatenate([p[1] for p in parts]),
        "channel": np.concatenate([p[2] for p in parts]),
        "edge": np.concatenate([p[3] for p in parts]),
    }


# ------------------------------------------------------------------------------------------- the cascade
def bernoulli_bits(rng: np.random.Generator, prob: np.ndarray, samples: int) -> np.ndarray:
    """(K, ceil(samples / 8)) uint8: bit ``s`` of row ``k`` is a Bernoulli(``prob[k]``) draw for sample ``s``.

    Draws are 16-bit integers against ``round(p * 2**16)`` (probabilities resolved to 1/65536, exact for 0 and
    1), made in row blocks; the padding bits of the last byte are 0.
    """
    prob = np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0)  # (K,)
    threshold = np.minimum(np.rint(prob * 65536.0), 65535).astype(np.uint16)  # (K,)
    certain = prob >= 1.0  # (K,)
    out = np.empty((len(prob), (samples + 7) // 8), dtype=np.uint8)  # (K, B)
    block = max(1, _CHUNK_CELLS // samples)
    for start in range(0, len(prob), block):
        stop = min(start + block, len(prob))
        draws = rng.integers(0, 65536, size=(stop - start, samples), dtype=np.uint16)  # (k, S)
        bits = draws < threshold[start:stop, None]  # (k, S)
        bits[certain[start:stop]] = True
        out[start:stop] = np.packbits(bits, axis=1)
    return out


def _in_slots(target: np.ndarray) -> list[np.ndarray]:
    """Edge ids split into slots where each target occurs at most once (slot ``k``: each target's k-th edge)."""
    order = np.argsort(target, kind="stable")  # (E,)
    sorted_target = target[order]
    starts = np.flatnonzero(np.r_[True, sorted_target[1:] != sorted_target[:-1]]) if len(order) else order
    first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))  # (E,) segment start of each sorted edge
    rank = np.arange(len(order)) - first  # (E,)
    return [order[rank == k] for k in range(int(rank.max()) + 1)] if len(order) else []


def packed_cascade(
    initial: np.ndarray,
    live: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    *,
    rounds: int,
    never: np.ndarray | None = None,
    samples: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Contagion rounds on bit-packed worlds (8 samples per byte, samples along the last axis).

    Args:
        initial: (N, B) uint8 round-0 defaults (intrinsic draws with any ``do(D = 1)`` set).
        live: (E, B) uint8 which exposure edges ``source[e] -> target[e]`` transmit.
        never: node ids that never default (``do(D = 0)``).
        samples: when given, also return the (N, samples) int8 round of default (-1 survived).

    Returns:
        The (N, B) final state, and the rounds or ``None``.
    """
    state = initial.copy()  # (N, B)
    when = None
    if samples is not None:
        when = np.where(np.unpackbits(state, axis=1, count=samples).astype(bool), 0, -1).astype(np.int8)
    slots = [(ids, source[ids], target[ids], live[ids]) for ids in _in_slots(target)]
    frontier = state
    for r in range(1, rounds + 1):
        new = np.zeros_like(state)  # (N, B)
        for _, src, dst, transmits in slots:
            new[dst] |= frontier[src] & transmits  # (e_k, B), targets unique within a slot
        new &= ~state
        if never is not None and len(never):
            new[never] = 0
        if not new.any():
            break
        state |= new
        if when is not None:
            when[np.unpackbits(new, axis=1, count=samples).astype(bool)] = r
        frontier = new
    return state, when


def cascade(
    initial: np.ndarray,
    live: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    *,
    rounds: int,
    never: np.ndarray | None = None,
    return_rounds: bool = False,
) -> np.ndarray:
    """The contagion rounds on unpacked worlds (see :func:`packed_cascade`).

    Args:
        initial: (S, N) bool round-0 defaults.
        live: (S, E) bool which exposure edges ``source -> target`` transmit.
        return_rounds: return the (S, N) int8 round of default (-1 survived) instead of the (S, N) bool state.
    """
    samples = initial.shape[0]
    state, when = packed_cascade(
        np.packbits(initial.T, axis=1),
        np.packbits(live.T, axis=1),
        source,
        target,
        rounds=rounds,
        never=never,
        samples=samples if return_rounds else None,
    )
    if when is not None:
        return when.T
    return np.unpackbits(state, axis=1, count=samples).T.astype(bool)


def _do_arrays(do: Mapping[int, int] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    one, zero = [], []
    for row, value in (do or {}).items():
        if not 0 <= int(row) < n:
            raise IndexError(f"do() names company row {row}, outside 0..{n - 1}")
        if value not in (0, 1, True, False):
            raise ValueError(f"do() values must be 0 or 1, got {value!r} for row {row}")
        (one if value else zero).append(int(row))
    return np.array(one, dtype=np.int64), np.array(zero, dtype=np.int64)


def _packed_worlds(
    world: CausalWorld, *, samples: int, seed: int, do: Mapping[int, int] | None
) -> tuple[np.ndarray, int]:
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    one, zero = _do_arrays(do, world.num_companies)
    rng = np.random.default_rng(seed)
    initial = bernoulli_bits(rng, world.intrinsic_probability, samples)  # (C, B)
    live = bernoulli_bits(rng, world.exposure_strength, samples)  # (E, B)
    initial[one] = 0xFF
    initial[zero] = 0
    state, _ = packed_cascade(
        initial, live, world.exposure_source, world.exposure_target, rounds=world.params.rounds, never=zero
    )
    return state, samples


def simulate_defaults(
    world: CausalWorld, *, samples: int = 1000, seed: int = 0, do: Mapping[int, int] | None = None
) -> np.ndarray:
    """(samples, C) bool outcomes of the structural model under ``do`` (company row -> 0 / 1).

    Fixed: graph, fundamentals, lawsuits, shocks (so every ``z_i``); resampled: intrinsic draws and live edges.
    The same ``seed`` gives the same draws for any ``do``, so two calls differing only in ``do`` are coupled.
    """
    state, samples = _packed_worlds(world, samples=samples, seed=seed, do=do)
    return np.unpackbits(state, axis=1, count=samples).T.astype(bool)  # (S, C)


def default_probabilities(
    world: CausalWorld, *, samples: int = 2000, seed: int = 0, do: Mapping[int, int] | None = None
) -> np.ndarray:
    """(C,) Monte Carlo ``P(D_i = 1 | do)`` of every company (same draws as :func:`simulate_defaults`)."""
    state, samples = _packed_worlds(world, samples=samples, seed=seed, do=do)
    return _count_bits(state, samples) / samples  # (C,)


def _count_bits(packed: np.ndarray, samples: int) -> np.ndarray:
    """(K,) number of set bits among the first ``samples`` bits of each row of ``packed`` (K, B)."""
    return np.unpackbits(packed, axis=1, count=samples).sum(axis=1, dtype=np.int64)


def interventional_default_probability(
    world: CausalWorld,
    company_row: int,
    *,
    do: Mapping[int, int] | None = None,
    samples: int = 2000,
    seed: int = 0,
) -> float:
    """Monte Carlo ``P(D_company_row = 1 | do(D_j = v) for j, v in do)``; ``do`` maps company rows to 0 / 1.

    Held fixed: the graph, fundamentals, lawsuits and news shocks (so every intrinsic logit ``z_i``); resampled
    in each of ``samples`` worlds: every other company's intrinsic Bernoulli draw and every edge's contagion
    draw. Calls with the same ``seed`` share their draws, so a difference between two ``do`` settings is an
    effect estimated with common random numbers.
    """
    if not 0 <= company_row < world.num_companies:
        raise IndexError(f"company row {company_row} outside 0..{world.num_companies - 1}")
    return float(default_probabilities(world, samples=samples, seed=seed, do=do)[company_row])


# ------------------------------------------------------------------------------------ contagion truth
@dataclass(frozen=True)
class ContagionTruth:
    """The true effect of a neighbour's default along one channel, per exposed pair and on average.

    ``P`` pairs ``(i, j)``: ``i`` exposed to ``j`` along ``channel`` (for ``guarantees``: ``i`` guarantees ``j``).

    Attributes:
        relation / channel / strength: what was measured and its contagion strength ``s``.
        exposed / sources: (P,) company rows ``i`` and ``j``.
        p_default: (P,) ``P(D_i = 1 | do(D_j = 1))``.
        p_survive: (P,) ``P(D_i = 1 | do(D_j = 0))``.
        effects: (P,) ``p_default - p_survive`` (Monte Carlo, common random numbers).
        closed_form: (P,) ``(1 - p_survive) * s``: the effect of the direct edge alone; exact when ``j``
            reaches ``i`` within ``rounds`` only through that edge (``direct_only``), a lower bound otherwise.
        direct_only: (P,) bool ``j``'s only route to ``i`` is the one direct edge.
        samples / seed: the Monte Carlo draws behind the numbers.
    """

    relation: str
    channel: str
    strength: float
    exposed: np.ndarray
    sources: np.ndarray
    p_default: np.ndarray
    p_survive: np.ndarray
    effects: np.ndarray
    closed_form: np.ndarray
    direct_only: np.ndarray
    samples: int
    seed: int

    @property
    def num_pairs(self) -> int:
        return int(self.exposed.shape[0])

    @property
    def average_effect(self) -> float:
        """Mean effect over exposed pairs (``nan`` when there are none)."""
        return float(self.effects.mean()) if self.num_pairs else float("nan")

    @property
    def average_closed_form(self) -> float:
        return float(self.closed_form.mean()) if self.num_pairs else float("nan")

    @property
    def stderr(self) -> float:
        """Monte Carlo standard error of :attr:`average_effect` (pairs' draws treated as independent)."""
        if not self.num_pairs:
            return float("nan")
        e = np.clip(self.effects, 0.0, 1.0)
        return float(np.sqrt(np.sum(e * (1 - e) / self.samples)) / self.num_pairs)

    def by_company(self) -> dict[int, float]:
        """Exposed company row -> mean effect over the neighbours it is exposed to."""
        sums = np.bincount(self.exposed, weights=self.effects)
        counts = np.bincount(self.exposed)
        return {int(i): float(sums[i] / counts[i]) for i in np.flatnonzero(counts)}

    def to_dict(self) -> dict[str, Any]:
        """JSON summary (averages and counts, no per-pair arrays)."""
        direct = self.direct_only
        return {
            "relation": self.relation,
            "channel": self.channel,
            "strength": self.strength,
            "pairs": self.num_pairs,
            "exposed_companies": len(np.unique(self.exposed)),
            "average_effect": round(self.average_effect, 5) if self.num_pairs else None,
            "stderr": round(self.stderr, 5) if self.num_pairs else None,
            "average_closed_form": round(self.average_closed_form, 5) if self.num_pairs else None,
            "direct_only_pairs": int(direct.sum()),
            "direct_only_effect": round(float(self.effects[direct].mean()), 5) if direct.any() else None,
            "direct_only_closed_form": round(float(self.closed_form[direct].mean()), 5)
            if direct.any()
            else None,
            "samples": self.samples,
            "seed": self.seed,
        }


def _in_csr(world: CausalWorld) -> tuple[np.ndarray, np.ndarray]:
    """CSR of incoming exposure edges: edge ids sorted by target, and per-company offsets."""
    order = np.argsort(world.exposure_target, kind="stable")  # (E,)
    counts = np.bincount(world.exposure_target, minlength=world.num_companies)
    return order, np.concatenate([[0], np.cumsum(counts)])  # (E,), (C + 1,)


def _ball(i: int, rounds: int, order: np.ndarray, ptr: np.ndarray, source: np.ndarray, skip: int) -> set[int]:
    """Companies that reach ``i`` within ``rounds`` exposure hops, ignoring edge ``skip``."""
    seen = {i}
    frontier = [i]
    for _ in range(rounds):
        if not frontier:
            break
        edges = np.concatenate([order[ptr[k] : ptr[k + 1]] for k in frontier])
        edges = edges[edges != skip]
        frontier = [k for k in dict.fromkeys(source[edges].tolist()) if k not in seen]
        seen.update(frontier)
    return seen


def true_contagion_effect(
    world: CausalWorld,
    relation: str = "guarantees",
    *,
    samples: int = 1000,
    seed: int = 0,
    max_pairs: int | None = None,
) -> ContagionTruth:
    """The true effect ``P(D_i | do(D_j = 1)) - P(D_i | do(D_j = 0))`` for every pair exposed along ``relation``.

    ``relation`` is a relation name (``guarantees``: ``i`` guarantees ``j``; ``owns``: ``i`` is a subsidiary of
    ``j``; ``supplies``: ``i`` is a customer of ``j``) or a channel name (:data:`CHANNEL_NAMES`). Each pair is
    simulated on the companies that can reach ``i`` within ``rounds`` hops (nothing farther can change ``D_i``),
    all pairs stacked into one batch, both arms on common random numbers. ``max_pairs`` evaluates a seeded
    random subset of the pairs.
    """
    channel = RELATION_CHANNEL.get(relation, relation)
    if channel not in CHANNEL_NAMES:
        raise ValueError(
            f"unknown relation or channel {relation!r}; relations: {', '.join(RELATION_CHANNEL)}, "
            f"channels: {', '.join(CHANNEL_NAMES)}"
        )
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    cid = CHANNEL_NAMES.index(channel)
    strength = world.params.strength(channel)
    rounds = world.params.rounds
    source, target = world.exposure_source, world.exposure_target
    pair_edges = np.flatnonzero(world.exposure_channel == cid)  # (P,)
    # one pair per (i, j), even when the graph repeats the edge
    _, first = np.unique(
        np.stack([target[pair_edges], source[pair_edges]], axis=1), axis=0, return_index=True
    )
    pair_edges = pair_edges[np.sort(first)]
    rng = np.random.default_rng(seed)
    if max_pairs is not None and len(pair_edges) > max_pairs:
        pair_edges = np.sort(rng.choice(pair_edges, size=max_pairs, replace=False))
    order, ptr = _in_csr(world)
    edge_strength = world.exposure_strength  # (E,)
    # one ball per pair, stacked into one disjoint graph
    node_parts, src_parts, dst_parts, strength_parts = [], [], [], []
    watch, forced, direct = [], [], []
    offset = 0
    for e in pair_edges.tolist():
        i, j = int(target[e]), int(source[e])
        ball = _ball(i, rounds, order, ptr, source, e)
        direct.append(j not in ball)
        ball.add(j)
        nodes = np.fromiter(sorted(ball), dtype=np.int64)  # (b,)
        edges = np.concatenate([order[ptr[k] : ptr[k + 1]] for k in nodes.tolist() if k != j])
        edges = edges[np.isin(source[edges], nodes)]
        node_parts.append(nodes)
        src_parts.append(np.searchsorted(nodes, source[edges]) + offset)
        dst_parts.append(np.searchsorted(nodes, target[edges]) + offset)
        strength_parts.append(edge_strength[edges])
        watch.append(int(np.searchsorted(nodes, i)) + offset)
        forced.append(int(np.searchsorted(nodes, j)) + offset)
        offset += len(nodes)
    count = len(pair_edges)
    p1 = np.zeros(count)
    p0 = np.zeros(count)
    if count:
        stack_nodes = np.concatenate(node_parts)  # (N',)
        stack_src = np.concatenate(src_parts)  # (E',)
        stack_dst = np.concatenate(dst_parts)  # (E',)
        watch_ids = np.array(watch, dtype=np.int64)
        forced_ids = np.array(forced, dtype=np.int64)
        initial = bernoulli_bits(rng, world.intrinsic_probability[stack_nodes], samples)  # (N', B)
        live = bernoulli_bits(rng, np.concatenate(strength_parts), samples)  # (E', B)
        initial[forced_ids] = 0xFF
        arm1, _ = packed_cascade(initial, live, stack_src, stack_dst, rounds=rounds)
        initial[forced_ids] = 0
        arm0, _ = packed_cascade(initial, live, stack_src, stack_dst, rounds=rounds, never=forced_ids)
        p1 = _count_bits(arm1[watch_ids], samples) / samples
        p0 = _count_bits(arm0[watch_ids], samples) / samples
    return ContagionTruth(
        relation=CHANNELS[cid].relation,
        channel=channel,
        strength=strength,
        exposed=target[pair_edges].astype(np.int64),
        sources=source[pair_edges].astype(np.int64),
        p_default=p1,
        p_survive=p0,
        effects=p1 - p0,
        closed_form=(1.0 - p0) * strength,
        direct_only=np.array(direct, dtype=bool),
        samples=samples,
        seed=seed,
    )


# ------------------------------------------------------------------------------------------- calibration
def solve_intercept(
    world: CausalWorld, *, target_rate: float, samples: int = 64, seed: int = 0, iterations: int = 30
) -> float:
    """The intercept ``b0`` whose expected default rate (intrinsic + contagion) is ``target_rate``.

    ``world.logit`` must hold the logit without intercept. Bisection on common random numbers (the rate is
    then monotone in ``b0``), so the answer is deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    n = world.num_companies
    u_initial = rng.random((n, samples))  # (C, S)
    live = bernoulli_bits(rng, world.exposure_strength, samples)  # (E, B)

    def rate(b0: float) -> float:
        prob = 1.0 / (1.0 + np.exp(-(world.logit + b0)))  # (C,)
        initial = np.packbits(u_initial < prob[:, None], axis=1)  # (C, B)
        state, _ = packed_cascade(
            initial, live, world.exposure_source, world.exposure_target, rounds=world.params.rounds
        )
        return float(_count_bits(state, samples).sum() / (n * samples))

    low, high = -15.0, 15.0
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if rate(mid) < target_rate:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
