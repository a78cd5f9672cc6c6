"""The relation composer: a differentiable rule learner that reads a story graph from the query's head outward.

Each person holds a distribution over ``S`` latent relation states (their relation to the query's head). The head
starts in a ``self`` state (one per head gender); every directed fact ``u -r-> v`` ("``v`` is ``u``'s ``r``") and
its inverse edge send ``p_u @ C[r]`` to ``v``, where ``C[r]`` is a row-stochastic ``(S, S)`` transition table of
relation ``r``. Messages travel Bellman–Ford style from the head's frontier to the people not yet reached, one hop
per step, and are averaged per person, so a person's state is the composition of the relations along the
shortest paths to them (generalised Bellman–Ford with a first-arrival boundary, as in NBFNet, Zhu et al. NeurIPS
2021; the transition tables are the differentiable rules of the NCRL / DRUM family). The tail's state is read out
to the labels by a row-stochastic ``(S, L)`` table. The states are anchored to the relation vocabulary: the head's
own ``r`` enters the state ``r``, and a person in the state of a label answers that label, so what two-fact
stories teach (``r1`` then ``r2`` is ``label``) is the same table entry a longer chain uses (as a composition
table is), and ``extra_states`` spare states hold compositions no relation names. The same tables compose a chain of any length, so a composer
trained on chains of 2-3 facts runs unchanged on chains of 10.

Edges carry relation *weights* ``(E, R)``: one-hot for a gold graph; a reader's relation probabilities fit the same
slot (answer-level training through the composition).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from kgreason.core.example import Example

FORMAT = "kgreason-relation-composer"
CONFIG_NAME = "composer.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(kw_only=True)
class ComposerConfig:
    """The composer's vocabulary and size: the story relations, the answer labels, the latent states."""

    relations: list[str]
    labels: list[str]
    extra_states: int = 8
    max_steps: int = 32
    genders: tuple[str, ...] = ("male", "female")


@dataclass
class StoryGraphs:
    """A batch of story graphs as tensors (``G`` stories, ``N`` people, ``E`` directed edges incl. inverses).

    Shapes: edge_index (2, E); edge_weight (E, 2R) relation weights (forward relations, then their inverses);
    head, tail (G,) node indices; head_state (G,) initial state of each head; num_nodes N.
    """

    edge_index: Tensor
    edge_weight: Tensor
    head: Tensor
    tail: Tensor
    head_state: Tensor
    num_nodes: int


@dataclass
class ComposerOutput:
    """``logits`` (G, L) log-probabilities of the labels; ``reached`` (G,) whether a path reached the tail."""

    logits: Tensor
    reached: Tensor


class RelationComposer(nn.Module):
    """Transition tables per relation and direction, a readout table; see the module docstring."""

    def __init__(self, *, config: ComposerConfig) -> None:
        super().__init__()
        self.config = config
        relations = len(config.relations)
        self.index = {r: i for i, r in enumerate(config.relations)}
        # states: one "self" per head gender, one per named relation (story relations and labels), then spares
        self.vocabulary = sorted(set(config.relations) | set(config.labels))
        named = {r: len(config.genders) + i for i, r in enumerate(self.vocabulary)}
        states = len(config.genders) + len(self.vocabulary) + config.extra_states
        self.states = states
        self.transition = nn.Parameter(torch.randn(2 * relations, states, states) * 0.1)  # (2R, S, S)
        self.readout = nn.Parameter(torch.randn(states, len(config.labels)) * 0.1)  # (S, L)
        # anchors: the head's own r is in state r; a person in state "label" answers that label
        fixed_rows = torch.zeros(2 * relations, states, dtype=torch.bool)  # (2R, S)
        fixed_to = torch.zeros(2 * relations, states, states)  # (2R, S, S)
        for r, name in enumerate(config.relations):
            fixed_rows[r, : len(config.genders)] = True
            fixed_to[r, : len(config.genders), named[name]] = 1.0
        label_rows = torch.zeros(states, dtype=torch.bool)  # (S,)
        label_to = torch.zeros(states, len(config.labels))  # (S, L)
        for j, label in enumerate(config.labels):
            label_rows[named[label]] = True
            label_to[named[label], j] = 1.0
        self.register_buffer("fixed_rows", fixed_rows, persistent=False)
        self.register_buffer("fixed_to", fixed_to, persistent=False)
        self.register_buffer("label_rows", label_rows, persistent=False)
        self.register_buffer("label_to", label_to, persistent=False)

    def encode(self, examples: Sequence[Example]) -> StoryGraphs:
        """The stories' gold facts (unknown relations dropped) as one batch of graphs."""
        src, dst, rel, heads, tails, head_states = [], [], [], [], [], []
        offset, r = 0, len(self.config.relations)
        for example in examples:
            facts = [f for f in example.facts or () if f[1] in self.index]
            query = example.metadata["query"]
            people = list(dict.fromkeys([query[0], query[1], *(p for f in facts for p in (f[0], f[2]))]))
            node = {p: offset + i for i, p in enumerate(people)}
            for head, relation, tail in facts:
                src += [node[head], node[tail]]
                dst += [node[tail], node[head]]
                rel += [self.index[relation], self.index[relation] + r]
            heads.append(node[query[0]])
            tails.append(node[query[1]])
            gender = (example.metadata.get("genders") or {}).get(query[0])
            head_states.append(self.config.genders.index(gender) if gender in self.config.genders else 0)
            offset += len(people)
        return StoryGraphs(
            edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            edge_weight=nn.functional.one_hot(torch.tensor(rel, dtype=torch.long), 2 * r).float(),
            head=torch.tensor(heads, dtype=torch.long),
            tail=torch.tensor(tails, dtype=torch.long),
            head_state=torch.tensor(head_states, dtype=torch.long),
            num_nodes=offset,
        )

    def forward(self, graphs: StoryGraphs, *, hard: bool = False) -> ComposerOutput:
        """Compose every story's graph from its head; ``hard``: each relation's table as its argmax per row
        (a deterministic automaton: long chains do not blur)."""
        from torch_geometric.utils import scatter

        n, s = graphs.num_nodes, self.states
        tables = torch.softmax(self.transition, dim=-1)  # (2R, S, S) rows sum to 1
        tables = torch.where(self.fixed_rows[..., None], self.fixed_to, tables)  # (2R, S, S) anchored rows
        readout = torch.softmax(self.readout, dim=-1)  # (S, L)
        readout = torch.where(self.label_rows[:, None], self.label_to, readout)  # (S, L)
        if hard:
            tables = nn.functional.one_hot(tables.argmax(-1), s).to(tables.dtype)  # (2R, S, S)
        state = torch.zeros(n, s)  # (N, S)
        state[graphs.head, graphs.head_state] = 1.0
        reached = torch.zeros(n, dtype=torch.bool)  # (N,)
        reached[graphs.head] = True
        frontier = reached.clone()  # (N,)
        src, dst = graphs.edge_index  # (E,), (E,)
        for _ in range(self.config.max_steps):
            live = frontier[src] & ~reached[dst]  # (E,) edges from the frontier to people not yet reached
            if not bool(live.any()):
                break
            composed = torch.einsum(
                "es,rst,er->et", state[src[live]], tables, graphs.edge_weight[live]
            )  # (E', S)
            summed = scatter(composed, dst[live], dim=0, dim_size=n, reduce="sum")  # (N, S)
            arrived = (
                scatter(torch.ones_like(dst[live]), dst[live], dim=0, dim_size=n, reduce="sum") > 0
            )  # (N,)
            fresh = summed / summed.sum(-1, keepdim=True).clamp_min(1e-12)  # (N, S) average of the arrivals
            state = torch.where(arrived[:, None], fresh, state)  # (N, S)
            reached = reached | arrived
            frontier = arrived
        labels = state[graphs.tail] @ readout  # (G, L)
        hit = reached[graphs.tail]  # (G,)
        labels = torch.where(hit[:, None], labels, torch.full_like(labels, 1.0 / labels.shape[-1]))  # (G, L)
        return ComposerOutput(logits=labels.clamp_min(1e-12).log(), reached=hit)

    # ----------------------------------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        from safetensors.torch import save_file

        from kgreason.core.atomic import atomic_write_text

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_NAME))
        payload = {"format": FORMAT, "version": 1, "config": asdict(self.config)}
        atomic_write_text(folder / CONFIG_NAME, json.dumps(payload, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> RelationComposer:
        from safetensors.torch import load_file

        folder = Path(directory)
        payload = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        if payload.get("format") != FORMAT:
            raise ValueError(f"{folder / CONFIG_NAME}: not a {FORMAT} (format {payload.get('format')!r})")
        config = payload["config"]
        config["genders"] = tuple(config["genders"])
        model = cls(config=ComposerConfig(**config))
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
        return model
