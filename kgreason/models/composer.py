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
table is), and ``extra_states`` spare states hold compositions no relation names. The same tables compose a chain
of any length, so a composer trained on chains of 2-3 facts runs unchanged on chains of 10.

``direction`` chooses where the walk starts. ``forward`` walks from the head as above; ``backward`` walks from the
tail along the reversed edges with tables of its own (a person's state is then the tail's relation to them:
``r`` then ``t`` composes right to left, so "daughter's husband's daughter" is husband-daughter first, an entry the
two-fact stories teach, where the forward walk needs "son-in-law's daughter"); ``meet`` runs both walks and, at
every person on a shortest head-tail path, composes the head's relation to them with theirs to the tail by a
``(S, S, S)`` meeting table, averaging the label log-probabilities over those people. Each half-walk is half the
chain, so a 10-fact chain is two 5-fact compositions (on CLUTRR data_089907f8 this is what lifts k = 10 from about
70 to about 87 %; see ``benchmarks/results/reasoning-from-text.md``). ``splits`` drops the walks: every pair of
people in order on a shortest head-tail path gets a state, composed by the meeting table from every split point
between them (log-probabilities averaged), shortest pairs first, as CYK builds a span from its sub-spans; a fact
is its relation's state (an inverse edge's state is learned per the gender of the person it describes). A chain
of 10 is then composed in about log2(10) levels of the same table rather than 9 steps (k = 10: about 93 %).

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
    direction: str = "forward"


#: Walking directions: from the query's head, from its tail, or both met at every person on a shortest path.
DIRECTIONS = ("forward", "backward", "meet", "splits")


@dataclass
class StoryGraphs:
    """A batch of story graphs as tensors (``G`` stories, ``N`` people, ``E`` directed edges incl. inverses).

    Shapes: edge_index (2, E); edge_weight (E, 2R) relation weights (forward relations, then their inverses);
    head, tail (G,) node indices; head_state, tail_state (G,) the start state (gender) of each end; num_nodes N; batch (N,) each
    person's story; gender (N,) each person's gender index (0 when unknown).
    """

    edge_index: Tensor
    edge_weight: Tensor
    head: Tensor
    tail: Tensor
    head_state: Tensor
    tail_state: Tensor
    num_nodes: int
    batch: Tensor
    gender: Tensor


@dataclass
class ComposerOutput:
    """``logits`` (G, L) log-probabilities of the labels; ``reached`` (G,) whether a path reached the tail."""

    logits: Tensor
    reached: Tensor


@dataclass
class Walk:
    """One propagation: ``state`` (N, S) each person's state distribution, ``reached`` (N,), ``hops`` (N,) the
    step each person was reached at (-1: never)."""

    state: Tensor
    reached: Tensor
    hops: Tensor


class RelationComposer(nn.Module):
    """Transition tables per relation and direction, a readout table; see the module docstring."""

    def __init__(self, *, config: ComposerConfig) -> None:
        super().__init__()
        if config.direction not in DIRECTIONS:
            raise ValueError(
                f"composer direction {config.direction!r}: expected one of {', '.join(DIRECTIONS)}"
            )
        self.config = config
        relations = len(config.relations)
        self.index = {r: i for i, r in enumerate(config.relations)}
        # states: one "self" per head gender, one per named relation (story relations and labels), then spares
        self.vocabulary = sorted(set(config.relations) | set(config.labels))
        selves = len(config.genders)
        named = {r: selves + i for i, r in enumerate(self.vocabulary)}
        states = selves + len(self.vocabulary) + config.extra_states
        self.states = states
        if config.direction in ("forward", "meet"):
            self.transition = nn.Parameter(torch.randn(2 * relations, states, states) * 0.1)  # (2R, S, S)
        if config.direction in ("backward", "meet"):
            self.transition_back = nn.Parameter(
                torch.randn(2 * relations, states, states) * 0.1
            )  # (2R, S, S)
        if config.direction in ("meet", "splits"):
            self.meeting = nn.Parameter(torch.randn(states, states, states) * 0.1)  # (S, S, S)
        if config.direction == "splits":
            # an edge's state from either end: forward slots are their relation, inverse slots learned per the
            # gender of the person they describe
            self.edge_states = nn.Parameter(torch.randn(relations, selves, states) * 0.1)  # (R, G, S)
        self.readout = nn.Parameter(torch.randn(states, len(config.labels)) * 0.1)  # (S, L)
        # anchors: the start's own r is in state r; a person in state "label" answers that label
        fixed_rows = torch.zeros(2 * relations, states, dtype=torch.bool)  # (2R, S)
        fixed_to = torch.zeros(2 * relations, states, states)  # (2R, S, S)
        for r, name in enumerate(config.relations):
            fixed_rows[r, :selves] = True
            fixed_to[r, :selves, named[name]] = 1.0
        label_rows = torch.zeros(states, dtype=torch.bool)  # (S,)
        label_to = torch.zeros(states, len(config.labels))  # (S, L)
        for j, label in enumerate(config.labels):
            label_rows[named[label]] = True
            label_to[named[label], j] = 1.0
        # meeting anchors: (h, self) is h and (self, t) is t
        meet_rows = torch.zeros(states, states, dtype=torch.bool)  # (S, S)
        meet_rows[:, :selves] = True
        meet_rows[:selves, :] = True
        meet_to = torch.zeros(states, states, states)  # (S, S, S)
        for g in range(selves):
            meet_to[:, g] = torch.eye(states)
            meet_to[g, :] = torch.eye(states)
        for name, value in [
            ("fixed_rows", fixed_rows),
            ("fixed_to", fixed_to),
            ("label_rows", label_rows),
            ("label_to", label_to),
            ("meet_rows", meet_rows),
            ("meet_to", meet_to),
        ]:
            self.register_buffer(name, value, persistent=False)

    def encode(self, examples: Sequence[Example]) -> StoryGraphs:
        """The stories' gold facts (unknown relations dropped) as one batch of graphs."""
        src, dst, rel, ends, starts, batch, gender_of = [], [], [], ([], []), ([], []), [], []
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
            genders = example.metadata.get("genders") or {}
            for i, person in enumerate(query[:2]):
                ends[i].append(node[person])
                gender = genders.get(person)
                starts[i].append(self.config.genders.index(gender) if gender in self.config.genders else 0)
            offset += len(people)
            batch += [len(ends[0]) - 1] * len(people)
            gender_of += [
                self.config.genders.index(genders[p]) if genders.get(p) in self.config.genders else 0
                for p in people
            ]
        return StoryGraphs(
            edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            edge_weight=nn.functional.one_hot(torch.tensor(rel, dtype=torch.long), 2 * r).float(),
            head=torch.tensor(ends[0], dtype=torch.long),
            tail=torch.tensor(ends[1], dtype=torch.long),
            head_state=torch.tensor(starts[0], dtype=torch.long),
            tail_state=torch.tensor(starts[1], dtype=torch.long),
            num_nodes=offset,
            batch=torch.tensor(batch, dtype=torch.long),
            gender=torch.tensor(gender_of, dtype=torch.long),
        )

    def forward(self, graphs: StoryGraphs, *, hard: bool = False) -> ComposerOutput:
        """Compose every story's graph; ``hard``: each relation's table as its argmax per row (a deterministic
        automaton)."""
        direction = self.config.direction
        if direction == "forward":
            walk = self.propagate(graphs, backward=False, hard=hard)
            states, hit = walk.state[graphs.tail], walk.reached[graphs.tail]  # (G, S), (G,)
            labels = states @ self.readout_table()  # (G, L)
        elif direction == "backward":
            walk = self.propagate(graphs, backward=True, hard=hard)
            states, hit = walk.state[graphs.head], walk.reached[graphs.head]  # (G, S), (G,)
            labels = states @ self.readout_table()  # (G, L)
        elif direction == "meet":
            labels, hit = self._meet(graphs, hard=hard)
        else:
            labels, hit = self._splits(graphs)
        uniform = torch.full_like(labels, 1.0 / labels.shape[-1])  # (G, L)
        labels = torch.where(hit[:, None], labels, uniform)  # (G, L)
        return ComposerOutput(logits=labels.clamp_min(1e-12).log(), reached=hit)

    def _meet(self, graphs: StoryGraphs, *, hard: bool) -> tuple[Tensor, Tensor]:
        """Label probabilities ``(G, L)`` from the walks of both ends met at every person on a shortest path."""
        from torch_geometric.utils import scatter

        ahead = self.propagate(graphs, backward=False, hard=hard)
        behind = self.propagate(graphs, backward=True, hard=hard)
        meeting = self._meeting_table()  # (S, S, S)
        length = ahead.hops[graphs.tail][graphs.batch]  # (N,) each person's story's head-tail distance
        on_path = ahead.reached & behind.reached & (ahead.hops + behind.hops == length)  # (N,)
        people = on_path.nonzero().squeeze(-1)  # (M,)
        met = torch.einsum(
            "ms,mt,stu->mu", ahead.state[people], behind.state[people], meeting
        )  # (M, S) the head's relation to the tail, composed at that person
        scores = (met @ self.readout_table()).clamp_min(1e-12).log()  # (M, L)
        stories = graphs.head.numel()
        mean = scatter(scores, graphs.batch[people], dim=0, dim_size=stories, reduce="mean")  # (G, L)
        return torch.softmax(mean, dim=-1), ahead.reached[graphs.tail]  # (G, L), (G,)

    def _meeting_table(self) -> Tensor:
        meeting = torch.softmax(self.meeting, dim=-1)  # (S, S, S)
        return torch.where(self.meet_rows[..., None], self.meet_to, meeting)  # (S, S, S) anchored

    def _splits(self, graphs: StoryGraphs) -> tuple[Tensor, Tensor]:
        """Label probabilities ``(G, L)``: every pair of people in order on a shortest head-tail path composed
        from every split point between them (the meeting table; log-probabilities averaged over the splits),
        shortest pairs first, as CYK parses a span from its sub-spans; one fact is its edge's state."""
        from torch_geometric.utils import scatter

        stories, n, s = graphs.head.numel(), graphs.num_nodes, self.states
        sizes = torch.bincount(graphs.batch, minlength=stories)  # (G,)
        width = int(sizes.max()) if stories else 0
        first = torch.cumsum(sizes, 0) - sizes  # (G,) first person of each story
        local = torch.arange(n) - first[graphs.batch]  # (N,) index within the story
        big = 1 << 20
        dist = torch.full((stories, width, width), big, dtype=torch.long)  # (G, W, W) hops, undirected
        src, dst = graphs.edge_index  # (E,), (E,)
        dist[graphs.batch[src], local[src], local[dst]] = 1
        dist[:, torch.arange(width), torch.arange(width)] = 0
        for k in range(width):  # Floyd-Warshall on each (small) story
            dist = torch.minimum(dist, dist[:, :, k, None] + dist[:, None, k, :])
        g = torch.arange(stories)
        head, tail = local[graphs.head], local[graphs.tail]  # (G,), (G,)
        total = dist[g, head, tail]  # (G,)
        from_head, to_tail = dist[g, head], dist[g, :, tail]  # (G, W), (G, W)
        ordered = (
            (from_head[:, :, None] + dist + to_tail[:, None, :] == total[:, None, None])
            & (dist > 0)
            & (total < big)[:, None, None]
        )  # (G, W, W) pairs in order along a shortest path
        # one fact: forward slots are their relation's state, inverse slots the learned state of the person
        # described (the edge's source u is then described: "u is v's inverse r")
        relations = len(self.config.relations)
        forward = torch.zeros(relations, s)  # (R, S)
        for r, name in enumerate(self.config.relations):
            forward[r, len(self.config.genders) + self.vocabulary.index(name)] = 1.0
        inverse = torch.softmax(self.edge_states, dim=-1)[:, graphs.gender[dst]]  # (R, E, S) gender of dst
        weight = graphs.edge_weight  # (E, 2R)
        edge = weight[:, :relations] @ forward + torch.einsum(
            "er,res->es", weight[:, relations:], inverse
        )  # (E, S) the state of dst relative to src
        one = dist[graphs.batch[src], local[src], local[dst]] == 1  # (E,)
        cell = graphs.batch[src] * width * width + local[src] * width + local[dst]  # (E,)
        summed = scatter(edge[one], cell[one], dim=0, dim_size=stories * width * width, reduce="mean")
        pair = summed.view(stories, width, width, s)  # (G, W, W, S) facts between neighbours
        table = self._meeting_table().reshape(s * s, s)  # (S*S, S)
        longest = int(total[total < big].max()) if bool((total < big).any()) else 0
        for d in range(2, longest + 1):
            gs, us, ws = (ordered & (dist == d)).nonzero(as_tuple=True)  # pairs at distance d
            if gs.numel() == 0:
                continue
            # split points v strictly between u and w on a shortest u-w path
            between = (dist[gs, us] + dist[gs, :, ws] == d) & (dist[gs, us] > 0) & (dist[gs, :, ws] > 0)
            t, vs = between.nonzero(as_tuple=True)  # (T,), (T,)
            left, right = pair[gs[t], us[t], vs], pair[gs[t], vs, ws[t]]  # (T, S), (T, S)
            composed = (left[:, :, None] * right[:, None, :]).reshape(-1, s * s) @ table  # (T, S)
            mean = scatter(composed.clamp_min(1e-12).log(), t, dim=0, dim_size=gs.numel(), reduce="mean")
            pair = pair.index_put((gs, us, ws), torch.softmax(mean, dim=-1))  # (G, W, W, S)
        hit = (total < big) & (total > 0)  # (G,)
        labels = pair[g, head, tail] @ self.readout_table()  # (G, L)
        return labels, hit

    def tables(self, *, backward: bool = False, hard: bool = False) -> Tensor:
        """The transition tables ``(2R, S, S)`` of one walking direction, rows stochastic, anchored rows fixed."""
        raw = self.transition_back if backward else self.transition  # (2R, S, S)
        tables = torch.softmax(raw, dim=-1)  # (2R, S, S) rows sum to 1
        tables = torch.where(self.fixed_rows[..., None], self.fixed_to, tables)  # (2R, S, S) anchored rows
        if hard:
            tables = nn.functional.one_hot(tables.argmax(-1), self.states).to(tables.dtype)  # (2R, S, S)
        return tables

    def readout_table(self) -> Tensor:
        """The readout ``(S, L)``: label states answer their label, the rest learned."""
        readout = torch.softmax(self.readout, dim=-1)  # (S, L)
        return torch.where(self.label_rows[:, None], self.label_to, readout)  # (S, L)

    def propagate(self, graphs: StoryGraphs, *, backward: bool = False, hard: bool = False) -> Walk:
        """First-arrival Bellman-Ford from every story's head (``backward``: from its tail, along the reversed
        edges, each person's state then being the tail's relation to them): each person's state and hops."""
        from torch_geometric.utils import scatter

        n, s = graphs.num_nodes, self.states
        tables = self.tables(backward=backward, hard=hard)  # (2R, S, S)
        start = graphs.tail if backward else graphs.head  # (G,)
        start_state = graphs.tail_state if backward else graphs.head_state  # (G,)
        state = torch.zeros(n, s)  # (N, S)
        state[start, start_state] = 1.0
        reached = torch.zeros(n, dtype=torch.bool)  # (N,)
        reached[start] = True
        hops = torch.full((n,), -1, dtype=torch.long)  # (N,)
        hops[start] = 0
        frontier = reached.clone()  # (N,)
        src, dst = graphs.edge_index.flip(0) if backward else graphs.edge_index  # (E,), (E,)
        for step in range(1, self.config.max_steps + 1):
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
            hops = torch.where(arrived, step, hops)  # (N,)
            reached = reached | arrived
            frontier = arrived
        return Walk(state=state, reached=reached, hops=hops)

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
