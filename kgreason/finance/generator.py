"""The company-graph generator: kgreason's own default dataset for the finance risk models, with known truth.

It draws ownership trees of companies, the people who own and run them, guarantee and supply links, yearly
fundamentals with mild drift, lawsuits, news sentences and a default outcome from the structural model of
:mod:`kgreason.finance.causal` (documented in ``knowledge/finance/generator.md``). It returns the
:class:`~kgreason.finance.graph.CompanyGraph` every risk model reads and the :class:`CausalWorld` behind it, so a
probe or a what-if answer can be checked against the true interventional effect.

News sentences come from the Financial PhraseBank (its sentiment labels; in the data folder, not shipped) when
it is there, else from a small built-in pool of sentences written for kgreason; ``graph.metadata["text_pool"]``
says which.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgreason.core.errors import ConfigError
from kgreason.finance.causal import (
    FUNDAMENTALS,
    INDUSTRY_EFFECTS,
    REGION_EFFECTS,
    CausalParams,
    CausalWorld,
    cascade,
    exposure_edges,
    solve_intercept,
    true_contagion_effect,
)
from kgreason.finance.graph import COMPANY, INDUSTRY, PERSON, REGION, CompanyGraph, Lawsuit, lawsuit_counts

logger = logging.getLogger(__name__)

SOURCE = "company-generator"
#: Relation names, in ``graph.relations`` order.
RELATIONS = (
    "owns",
    "guarantees",
    "supplies",
    "legalRepresentativeOf",
    "executiveOf",
    "inIndustry",
    "inRegion",
)
LAWSUIT_FEATURES = ("lawsuits", "lawsuits_defendant", "lawsuits_lost", "lawsuits_lost_defendant")
#: Tabular features, in ``graph.feature_names`` order.
FEATURE_NAMES = (*FUNDAMENTALS, *LAWSUIT_FEATURES)
MONOTONE = {"lawsuits_lost_defendant": +1, "leverage": +1}
TEXT_POOLS = ("auto", "phrasebank", "builtin")
SENTIMENTS = ("negative", "neutral", "positive")

LAWSUIT_CAUSES_DEFENDANT = (
    "loan contract",
    "private lending",
    "sales contract",
    "guarantee dispute",
    "labour dispute",
    "lease contract",
    "construction contract",
)
LAWSUIT_CAUSES_PLAINTIFF = (
    "sales contract",
    "service contract",
    "intellectual property",
    "lease contract",
    "loan contract",
)
COURTS = ("grassroots", "intermediate", "high")

#: Built-in news pool (written for kgreason, CC0): sentence templates by sentiment; ``{p}`` a percentage,
#: ``{q}`` a quarter, ``{m}`` an amount in millions.
BUILTIN_SENTENCES: dict[str, tuple[str, ...]] = {
    "negative": (
        "Net sales fell by {p} % in the {q} quarter.",
        "The company reported an operating loss of EUR {m} million.",
        "Operating profit decreased by {p} % compared with the previous year.",
        "The company issued a profit warning for the {q} quarter.",
        "A major customer cancelled orders worth EUR {m} million.",
        "The company will lay off {p} % of its staff after weak demand.",
        "Its bank lenders refused to extend a credit line of EUR {m} million.",
        "The auditor raised doubts about the company's ability to continue as a going concern.",
        "Overdue payables rose to EUR {m} million at the end of the quarter.",
        "The rating agency downgraded the company's debt by two notches.",
        "Sales of the main product line dropped {p} % year on year.",
        "The company missed an interest payment on a EUR {m} million loan.",
    ),
    "neutral": (
        "The company will publish its {q} quarter report next month.",
        "The company operates {p} sales offices in the region.",
        "The board proposed to keep the dividend unchanged.",
        "The company appointed a new chief financial officer.",
        "The annual general meeting will be held in the spring.",
        "The company signed a framework agreement with a local distributor.",
        "The company moved its headquarters to a new office building.",
        "Registered capital stands at EUR {m} million.",
        "The company employs about {p}0 people.",
        "The company said it is reviewing its product portfolio.",
        "The shares will be listed under a new trading code.",
        "Management presented the strategy to investors on Tuesday.",
    ),
    "positive": (
        "Net sales rose by {p} % in the {q} quarter.",
        "Operating profit increased to EUR {m} million from a year earlier.",
        "The company won a supply contract worth EUR {m} million.",
        "Order intake grew {p} % compared with the previous year.",
        "The company raised its full-year profit guidance.",
        "The company repaid a EUR {m} million bank loan ahead of schedule.",
        "Operating margin improved by {p} percentage points.",
        "The company opened a new plant to meet strong demand.",
        "Cash flow from operations doubled to EUR {m} million.",
        "The rating agency upgraded the company's outlook to positive.",
        "Exports grew by {p} % driven by new markets.",
        "The company paid a record dividend of EUR {m} million.",
    ),
}


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig:
    """What the generator draws. Every field is validated; the defaults make the embedded default dataset.

    Attributes:
        num_companies: companies (rows of the graph).
        num_groups: ownership trees (corporate groups) the companies are split into; a group of one is a
            stand-alone company.
        executives_per_company: mean number of executives per company (capped at ``max_executives``); every
            company also has one legal representative.
        max_executives: the most executives a company has.
        person_reuse: probability that a role in a group goes to a person already in that group.
        num_industries / num_regions: how many of the model's industries / regions are used.
        guarantee_density: guarantee edges per company.
        mutual_guarantees: probability that a guarantee is returned (``B`` also guarantees ``A``).
        supply_density: supply edges per company.
        first_year / last_year: observation years; each company is observed in one of them.
        train_last_year / dev_last_year: train is ``<= train_last_year``, dev up to ``dev_last_year``, test after.
        drift: shift of the fundamentals between the first and the last year, in standard deviations.
        text_pool: ``auto`` (PhraseBank when the data folder has it, else built-in), ``phrasebank`` (required)
            or ``builtin``.
        phrasebank_agreement: the PhraseBank subset: 50, 66, 75 or ``all``.
        data_dir: the data folder (default: ``kgreason.core.paths.data_dir()``) or the PhraseBank folder itself.
        sentences_min / sentences_max: news sentences per company (uniform in between).
        text_signal: how strongly the latent shock tilts the sentiment of a company's sentences.
        truth_samples: Monte Carlo samples of the true contagion effects put in ``graph.metadata``
            (0: skip them).
        seed: the seed (the same config gives the same graph).
        params: the structural default model's parameters.
    """

    num_companies: int = 3000
    num_groups: int = 700
    executives_per_company: float = 1.5
    max_executives: int = 4
    person_reuse: float = 0.35
    num_industries: int = 10
    num_regions: int = 8
    guarantee_density: float = 0.45
    mutual_guarantees: float = 0.15
    supply_density: float = 0.8
    first_year: int = 2014
    last_year: int = 2021
    train_last_year: int = 2018
    dev_last_year: int = 2019
    drift: float = 0.4
    text_pool: str = "auto"
    phrasebank_agreement: str = "75"
    data_dir: str | None = None
    sentences_min: int = 0
    sentences_max: int = 5
    text_signal: float = 1.5
    truth_samples: int = 300
    seed: int = 0
    params: CausalParams = field(default_factory=CausalParams)

    def __post_init__(self) -> None:
        object.__setattr__(self, "phrasebank_agreement", str(self.phrasebank_agreement).lower())
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", str(self.data_dir))
        checks = [
            (self.num_companies >= 2, "num_companies must be >= 2"),
            (1 <= self.num_groups <= self.num_companies, "num_groups must be in 1..num_companies"),
            (self.executives_per_company >= 0, "executives_per_company must be >= 0"),
            (self.max_executives >= 0, "max_executives must be >= 0"),
            (0 <= self.person_reuse <= 1, "person_reuse must be in [0, 1]"),
            (
                1 <= self.num_industries <= len(INDUSTRY_EFFECTS),
                f"num_industries must be in 1..{len(INDUSTRY_EFFECTS)}",
            ),
            (
                1 <= self.num_regions <= len(REGION_EFFECTS),
                f"num_regions must be in 1..{len(REGION_EFFECTS)}",
            ),
            (self.guarantee_density >= 0 and self.supply_density >= 0, "edge densities must be >= 0"),
            (0 <= self.mutual_guarantees <= 1, "mutual_guarantees must be in [0, 1]"),
            (
                self.first_year <= self.train_last_year < self.dev_last_year < self.last_year,
                "years must satisfy first_year <= train_last_year < dev_last_year < last_year",
            ),
            (self.drift >= 0, "drift must be >= 0"),
            (self.text_pool in TEXT_POOLS, f"text_pool must be one of {', '.join(TEXT_POOLS)}"),
            (
                self.phrasebank_agreement in ("50", "66", "75", "all"),
                "phrasebank_agreement must be 50, 66, 75 or all",
            ),
            (0 <= self.sentences_min <= self.sentences_max, "need 0 <= sentences_min <= sentences_max"),
            (self.truth_samples >= 0, "truth_samples must be >= 0"),
            (isinstance(self.params, CausalParams), "params must be a CausalParams"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"GeneratorConfig: {message}")
        industries = list(INDUSTRY_EFFECTS)[: self.num_industries]
        regions = list(REGION_EFFECTS)[: self.num_regions]
        missing = [n for n in industries if n not in self.params.industry_effects]
        missing += [n for n in regions if n not in self.params.region_effects]
        if missing:
            raise ConfigError(f"GeneratorConfig: params has no effect for {', '.join(missing)}")

    def split_of(self, year: int) -> str:
        if year <= self.train_last_year:
            return "train"
        return "dev" if year <= self.dev_last_year else "test"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GeneratedCompanies:
    """A generated company graph and the causal world behind it (same company rows)."""

    graph: CompanyGraph
    world: CausalWorld


@dataclass
class TextPool:
    """Sentences by sentiment label and where they come from."""

    sentences: dict[str, list[str]]
    provenance: dict[str, Any]


# ------------------------------------------------------------------------------------------- text pool
def load_text_pool(config: GeneratorConfig) -> TextPool:
    """The PhraseBank sentences (deduplicated) when ``config`` allows and the data has them, else built-ins."""
    if config.text_pool != "builtin":
        from kgreason.data.errors import DatasetNotFoundError
        from kgreason.data.phrasebank import (
            PHRASEBANK_CITATION,
            PHRASEBANK_FILES,
            PHRASEBANK_LICENSE,
            read_phrasebank_file,
        )
        from kgreason.data.readers import locate_dataset

        name = PHRASEBANK_FILES[config.phrasebank_agreement]
        try:
            folder = locate_dataset("financial_phrasebank", data_dir=config.data_dir, required=[name])
        except DatasetNotFoundError as error:
            if config.text_pool == "phrasebank":
                raise
            logger.info("Financial PhraseBank not found (%s); using the built-in sentence pool", error)
            reason = str(error)
        else:
            by_label: dict[str, dict[str, None]] = {label: {} for label in SENTIMENTS}
            for example in read_phrasebank_file(folder / name):
                by_label[example.label][example.text] = None
            sentences = {label: list(texts) for label, texts in by_label.items()}
            return TextPool(
                sentences=sentences,
                provenance={
                    "text_pool": "phrasebank",
                    "file": str(folder / name),
                    "sentences": {label: len(s) for label, s in sentences.items()},
                    "license": PHRASEBANK_LICENSE,
                    "citation": PHRASEBANK_CITATION,
                },
            )
    else:
        reason = "text_pool='builtin'"
    rng = np.random.default_rng(12345)  # fixed: the built-in pool is the same for every seed
    sentences = {}
    for label, templates in BUILTIN_SENTENCES.items():
        filled: dict[str, None] = {}
        for template in templates:
            for _ in range(6):
                text = template.format(
                    p=int(rng.integers(2, 40)),
                    q=("first", "second", "third", "fourth")[rng.integers(4)],
                    m=round(float(rng.uniform(0.5, 80.0)), 1),
                )
                filled[text] = None
        sentences[label] = list(filled)
    return TextPool(
        sentences=sentences,
        provenance={
            "text_pool": "builtin",
            "reason": reason,
            "sentences": {label: len(s) for label, s in sentences.items()},
            "license": "CC0 (written for kgreason)",
        },
    )


# ------------------------------------------------------------------------------------------- generator
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _group_sizes(rng: np.random.Generator, companies: int, groups: int) -> np.ndarray:
    """Skewed group sizes (each >= 1) summing to ``companies``."""
    weights = rng.dirichlet(np.full(groups, 0.6))  # (G,)
    return 1 + rng.multinomial(companies - groups, weights)  # (G,)


def _ownership_trees(
    rng: np.random.Generator, config: GeneratorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """Companies in random order, grouped; each non-root's parent is an earlier member of its group.

    Returns ``(sizes, group, parent, members, share)``: group sizes (G,), each company's group (C,), its parent
    row or -1 (C,), the member rows of every group (parents first) and the parent's stake (C,).
    """
    n = config.num_companies
    order = rng.permutation(n)  # (C,)
    sizes = _group_sizes(rng, n, config.num_groups)  # (G,)
    group = np.empty(n, dtype=np.int64)  # (C,)
    parent = np.full(n, -1, dtype=np.int64)  # (C,)
    members: list[np.ndarray] = np.split(order, np.cumsum(sizes)[:-1])
    for g, rows in enumerate(members):
        group[rows] = g
        if len(rows) > 1:
            picks = (rng.random(len(rows) - 1) * np.arange(1, len(rows))).astype(np.int64)  # (k-1,)
            parent[rows[1:]] = rows[picks]
    share = rng.uniform(0.3, 1.0, size=n)  # (C,) parent's stake
    return sizes, group, parent, members, share


def _industries_and_regions(
    rng: np.random.Generator,
    members: list[np.ndarray],
    parent: np.ndarray,
    num_industries: int,
    num_regions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each company's industry and region index (C,): they follow the parent most of the time."""
    n = len(parent)
    industry = np.empty(n, dtype=np.int64)
    region = np.empty(n, dtype=np.int64)
    own_industry = rng.integers(0, num_industries, size=n)
    own_region = rng.integers(0, num_regions, size=n)
    inherit_industry = rng.random(n) < 0.6
    inherit_region = rng.random(n) < 0.8
    for rows in members:
        for row in rows:
            p = parent[row]
            industry[row] = industry[p] if p >= 0 and inherit_industry[row] else own_industry[row]
            region[row] = region[p] if p >= 0 and inherit_region[row] else own_region[row]
    return industry, region


def _draw_fundamentals(
    rng: np.random.Generator, t: np.ndarray, is_sub: np.ndarray, drift: float
) -> np.ndarray:
    """The fundamentals (C, 5) in ``FUNDAMENTALS`` order: a latent quality factor correlates them and
    ``drift`` moves them over the observation time ``t`` in [0, 1] (C,)."""
    n = len(t)
    quality = rng.standard_normal(n)  # (C,)
    noise = rng.standard_normal((n, 5))  # (C, 5)
    shift = drift * t  # (C,)
    log_capital = 2.5 + 0.3 * quality + 1.0 * noise[:, 0] - 0.4 * is_sub
    leverage = np.clip(0.55 + 0.2 * (-0.5 * quality + 0.85 * noise[:, 1] + shift), 0.02, 1.6)
    roa = 0.04 + 0.065 * (0.6 * quality + 0.8 * noise[:, 2] - shift)
    liquidity = np.exp(0.3 + 0.35 * (0.5 * quality + 0.85 * noise[:, 3] - 0.5 * shift))
    age = np.clip(1.0 + rng.gamma(2.0, 4.5, size=n) + 0.5 * noise[:, 4], 0.5, 60.0)
    return np.stack([log_capital, leverage, roa, liquidity, age], axis=1)  # (C, 5)


def _draw_lawsuits(
    rng: np.random.Generator, shock: np.ndarray, lev_std: np.ndarray, cap_std: np.ndarray
) -> list[list[Lawsuit]]:
    """Each company's lawsuits: the latent shock, leverage and size (standardised, (C,)) bring them."""
    n = len(shock)
    rate = np.exp(np.log(0.8) + 0.6 * shock + 0.3 * lev_std + 0.25 * cap_std)  # (C,)
    suits = np.minimum(rng.poisson(rate), 30)  # (C,)
    owner = np.repeat(np.arange(n), suits)  # (L,)
    defendant = rng.random(len(owner)) < _sigmoid(0.2 + 0.7 * shock[owner] + 0.4 * lev_std[owner])
    lost_p = np.where(defendant, _sigmoid(-0.3 + 0.8 * shock[owner]), _sigmoid(-0.8 + 0.3 * shock[owner]))
    lost = rng.random(len(owner)) < lost_p
    cause_d = rng.integers(0, len(LAWSUIT_CAUSES_DEFENDANT), size=len(owner))
    cause_p = rng.integers(0, len(LAWSUIT_CAUSES_PLAINTIFF), size=len(owner))
    court = rng.choice(len(COURTS), size=len(owner), p=[0.7, 0.25, 0.05])
    months = rng.integers(1, 37, size=len(owner))
    lawsuits: list[list[Lawsuit]] = [[] for _ in range(n)]
    for k, row in enumerate(owner.tolist()):
        lawsuits[row].append(
            Lawsuit(
                role="defendant" if defendant[k] else "plaintiff",
                cause=LAWSUIT_CAUSES_DEFENDANT[cause_d[k]]
                if defendant[k]
                else LAWSUIT_CAUSES_PLAINTIFF[cause_p[k]],
                court=COURTS[court[k]],
                outcome="lost" if lost[k] else "won",
                months_before=int(months[k]),
            )
        )
    return lawsuits


def _add_people(
    rng: np.random.Generator,
    config: GeneratorConfig,
    members: list[np.ndarray],
    parent: np.ndarray,
    share: np.ndarray,
    nodes: list[str],
    kinds: list[int],
    edges: list[tuple[int, int, int]],
    weights: list[float],
) -> None:
    """Append the people (shareholders, legal representatives, executives) to ``nodes``/``kinds`` and the
    ownership and role edges to ``edges``/``weights``; people are keyed ``P00000``... in order of creation."""
    rel = {name: r for r, name in enumerate(RELATIONS)}
    people_of: list[list[int]] = [[] for _ in range(config.num_groups)]

    def staff(g: int) -> int:
        pool = people_of[g]
        if pool and rng.random() < config.person_reuse:
            return pool[int(rng.integers(len(pool)))]
        nodes.append("")  # keyed below, once the count is known
        kinds.append(PERSON)
        pool.append(len(nodes) - 1)
        return len(nodes) - 1

    executives = np.minimum(
        rng.poisson(config.executives_per_company, size=len(parent)), config.max_executives
    )
    for g, rows in enumerate(members):
        shareholders = int(rng.integers(1, 4))
        stakes = rng.dirichlet(np.ones(shareholders))
        for stake in stakes:
            edges.append((staff(g), rel["owns"], int(rows[0])))
            weights.append(float(stake))
        for row in rows.tolist():
            if parent[row] >= 0:
                edges.append((int(parent[row]), rel["owns"], row))
                weights.append(float(share[row]))
            edges.append((staff(g), rel["legalRepresentativeOf"], row))
            weights.append(1.0)
            chosen: set[int] = set()
            for _ in range(int(executives[row])):
                p = staff(g)
                if p not in chosen:
                    chosen.add(p)
                    edges.append((p, rel["executiveOf"], row))
                    weights.append(1.0)
    people = [i for i, kind in enumerate(kinds) if kind == PERSON]
    pwidth = max(5, len(str(len(people) - 1)))
    for number, i in enumerate(people):
        nodes[i] = f"P{number:0{pwidth}d}"


def _draw_guarantees(
    rng: np.random.Generator,
    config: GeneratorConfig,
    members: list[np.ndarray],
    sizes: np.ndarray,
    group: np.ndarray,
    region: np.ndarray,
    num_regions: int,
) -> dict[tuple[int, int], float]:
    """Guarantee amounts by ``(guarantor, guaranteed)`` row: within the group, else within the region, else
    anywhere; some are mutual."""
    n = len(group)
    group_size = sizes[group]  # (C,)
    by_region = [np.flatnonzero(region == r) for r in range(num_regions)]
    pairs: dict[tuple[int, int], float] = {}
    num_guarantees = round(config.guarantee_density * n)
    heads = rng.integers(0, n, size=num_guarantees)
    mode = rng.random(num_guarantees)
    for head, u in zip(heads.tolist(), mode.tolist(), strict=True):
        if u < 0.45 and group_size[head] > 1:
            rows = members[group[head]]
        elif u < 0.8:
            rows = by_region[region[head]]
        else:
            rows = None
        tail = int(rng.integers(n)) if rows is None else int(rows[rng.integers(len(rows))])
        if tail == head:
            continue
        amount = float(np.round(np.exp(rng.normal(np.log(5.0), 0.8)), 2))
        pairs.setdefault((head, tail), amount)
        if rng.random() < config.mutual_guarantees:
            pairs.setdefault((tail, head), amount)
    return pairs


def _draw_supplies(
    rng: np.random.Generator, config: GeneratorConfig, log_capital: np.ndarray
) -> list[tuple[int, int, float]]:
    """Supply links ``(supplier, customer, weight)``: any supplier, customers drawn by size (bigger companies
    buy from more suppliers); repeated pairs are dropped."""
    n = len(log_capital)
    num_supplies = round(config.supply_density * n)
    size_w = np.exp(0.5 * log_capital)
    suppliers = rng.integers(0, n, size=num_supplies)
    customers = rng.choice(n, size=num_supplies, p=size_w / size_w.sum())
    seen: set[tuple[int, int]] = set()
    links: list[tuple[int, int, float]] = []
    for head, tail in zip(suppliers.tolist(), customers.tolist(), strict=True):
        if head != tail and (head, tail) not in seen:
            seen.add((head, tail))
            links.append((head, tail, float(np.round(rng.uniform(0.05, 0.6), 3))))
    return links


def _draw_texts(
    rng: np.random.Generator, config: GeneratorConfig, shock: np.ndarray, pool: TextPool
) -> list[list[str]]:
    """Each company's news sentences from ``pool``, their sentiment tilted by the latent shock (C,)."""
    n = len(shock)
    logits = np.stack(
        [-0.8 + config.text_signal * shock, np.full(n, 0.3), -0.6 - config.text_signal * shock], axis=1
    )  # (C, 3)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # (C, 3)
    num_sentences = rng.integers(config.sentences_min, config.sentences_max + 1, size=n)
    texts: list[list[str]] = []
    for row in range(n):
        labels = rng.choice(3, size=int(num_sentences[row]), p=probs[row])
        chosen_texts = []
        for label in labels.tolist():
            options = pool.sentences[SENTIMENTS[label]]
            chosen_texts.append(options[int(rng.integers(len(options)))])
        texts.append(chosen_texts)
    return texts


def _causal_world(
    config: GeneratorConfig,
    graph: CompanyGraph,
    fundamentals: np.ndarray,
    lost_defendant: np.ndarray,
    shock: np.ndarray,
    industry: np.ndarray,
    region: np.ndarray,
) -> CausalWorld:
    """The structural model over ``graph``'s companies, its intercept solved when ``config.params`` has none;
    no defaults realised yet."""
    params = config.params
    n = len(shock)
    exposure = exposure_edges(graph)
    world = CausalWorld(
        params=params,
        company_keys=graph.nodes[:n],
        fundamentals=fundamentals,
        lawsuits_lost_defendant=lost_defendant,
        shock=shock,
        industry=industry,
        region=region,
        industries=list(INDUSTRY_EFFECTS)[: config.num_industries],
        regions=list(REGION_EFFECTS)[: config.num_regions],
        logit=np.zeros(n),
        exposure_source=exposure["source"],
        exposure_target=exposure["target"],
        exposure_channel=exposure["channel"],
        exposure_edge=exposure["edge"],
        intrinsic_default=np.zeros(n, dtype=bool),
        default_round=np.full(n, -1, dtype=np.int8),
    )
    if params.intercept is None:
        world.logit = world.structural_logit()  # intercept 0
        b0 = solve_intercept(world, target_rate=params.default_rate, seed=config.seed)
        world.params = CausalParams(**{**asdict(params), "intercept": round(b0, 6)})
    world.logit = world.structural_logit()
    return world


def _realise_defaults(rng: np.random.Generator, world: CausalWorld) -> None:
    """Draw one realisation of the defaults into ``world`` (intrinsic defaults, then the cascade's rounds)."""
    n = len(world.shock)
    initial = rng.random((1, n)) < world.intrinsic_probability  # (1, C)
    live = rng.random((1, len(world.exposure_source))) < world.exposure_strength  # (1, E)
    when = cascade(
        initial,
        live,
        world.exposure_source,
        world.exposure_target,
        rounds=world.params.rounds,
        return_rounds=True,
    )[0]  # (C,)
    world.intrinsic_default = initial[0]
    world.default_round = when


def generate_company_graph(config: GeneratorConfig | None = None) -> GeneratedCompanies:
    """Draw a company graph and its causal world from ``config`` (deterministic for ``config.seed``)."""
    config = config or GeneratorConfig()
    rng = np.random.default_rng(config.seed)
    n = config.num_companies
    width = max(5, len(str(n - 1)))
    industries = list(INDUSTRY_EFFECTS)[: config.num_industries]
    regions = list(REGION_EFFECTS)[: config.num_regions]

    sizes, group, parent, members, share = _ownership_trees(rng, config)
    industry, region = _industries_and_regions(rng, members, parent, len(industries), len(regions))

    # --- observation years and splits
    years = rng.integers(config.first_year, config.last_year + 1, size=n)  # (C,)
    t = (years - config.first_year) / (config.last_year - config.first_year)  # (C,) in [0, 1]
    splits = np.array([config.split_of(int(y)) for y in years], dtype=object)

    fundamentals = _draw_fundamentals(rng, t, parent >= 0, config.drift)  # (C, 5)
    log_capital, leverage = fundamentals[:, 0], fundamentals[:, 1]
    lev_std = (leverage - FUNDAMENTALS["leverage"][0]) / FUNDAMENTALS["leverage"][1]
    cap_std = (log_capital - FUNDAMENTALS["log_capital"][0]) / FUNDAMENTALS["log_capital"][1]

    # --- the latent news shock and the lawsuits it (and leverage, size) bring
    shock = rng.standard_normal(n)  # (C,)
    lawsuits = _draw_lawsuits(rng, shock, lev_std, cap_std)
    counts = [lawsuit_counts(s) for s in lawsuits]
    law_features = np.array(
        [[c[name] for name in LAWSUIT_FEATURES] for c in counts], dtype=np.float64
    )  # (C, 4)
    features = np.concatenate([fundamentals, law_features], axis=1).astype(np.float32)  # (C, F)

    # --- nodes (companies, people, industries, regions) and edges
    nodes = [f"C{i:0{width}d}" for i in range(n)]
    kinds = [COMPANY] * n
    edges: list[tuple[int, int, int]] = []
    weights: list[float] = []
    rel = {name: r for r, name in enumerate(RELATIONS)}
    _add_people(rng, config, members, parent, share, nodes, kinds, edges, weights)
    industry_node = len(nodes)
    nodes += [f"IND:{name}" for name in industries]
    kinds += [INDUSTRY] * len(industries)
    region_node = len(nodes)
    nodes += [f"REG:{name}" for name in regions]
    kinds += [REGION] * len(regions)
    for (head, tail), amount in _draw_guarantees(
        rng, config, members, sizes, group, region, len(regions)
    ).items():
        edges.append((head, rel["guarantees"], tail))
        weights.append(amount)
    for head, tail, weight in _draw_supplies(rng, config, log_capital):
        edges.append((head, rel["supplies"], tail))
        weights.append(weight)
    for row in range(n):
        edges.append((row, rel["inIndustry"], industry_node + int(industry[row])))
        edges.append((row, rel["inRegion"], region_node + int(region[row])))
        weights += [1.0, 1.0]

    pool = load_text_pool(config)
    texts = _draw_texts(rng, config, shock, pool)

    graph = CompanyGraph(
        name=SOURCE,
        nodes=nodes,
        kinds=np.array(kinds, dtype=np.int8),
        relations=list(RELATIONS),
        edges=np.array(edges, dtype=np.int64).reshape(-1, 3),
        edge_weight=np.array(weights, dtype=np.float32),
        companies=np.arange(n, dtype=np.int64),
        feature_names=list(FEATURE_NAMES),
        features=features,
        labels=np.zeros(n, dtype=np.int8),
        splits=splits,
        periods=years.astype(np.int32),
        texts=texts,
        lawsuits=lawsuits,
        monotone=dict(MONOTONE),
    )
    lost_defendant = law_features[:, LAWSUIT_FEATURES.index("lawsuits_lost_defendant")].copy()
    world = _causal_world(config, graph, fundamentals, lost_defendant, shock, industry, region)
    _realise_defaults(rng, world)
    graph.labels = (world.default_round >= 0).astype(np.int8)

    graph.metadata = _metadata(config, world, graph, pool)
    graph.validate()
    return GeneratedCompanies(graph=graph, world=world)


def _metadata(
    config: GeneratorConfig, world: CausalWorld, graph: CompanyGraph, pool: TextPool
) -> dict[str, Any]:
    rounds = world.default_round
    settings = config.to_dict()
    settings.pop("params")
    meta: dict[str, Any] = {
        "source": SOURCE,
        "causal_model": "knowledge/finance/generator.md",
        "config": settings,
        "causal_params": world.params.to_dict(),
        "text_pool": pool.provenance,
        "default_rate": round(float(graph.labels.mean()), 5),
        "defaults_by_round": {str(r): int((rounds == r).sum()) for r in range(world.params.rounds + 1)},
        "expected_intrinsic_rate": round(float(world.intrinsic_probability.mean()), 5),
        "hidden_variables": {
            "shock": "latent news shock: drives default risk and text sentiment, not a feature"
        },
    }
    if config.truth_samples:
        truth = {}
        for relation in ("guarantees", "owns", "supplies"):
            truth[relation] = true_contagion_effect(
                world, relation, samples=config.truth_samples, seed=config.seed, max_pairs=400
            ).to_dict()
        meta["true_effects"] = truth
    return meta


def read_company_generator(*, data_dir: str | Path | None = None, **overrides: Any) -> CompanyGraph:
    """The generated company graph (default config with ``overrides``); PhraseBank from ``data_dir``."""
    from kgreason.core.paths import data_dir as default_data_dir

    root = default_data_dir(data_dir)
    config = GeneratorConfig(data_dir=None if root is None else str(root), **overrides)
    return generate_company_graph(config).graph
