"""KG embeddings: the filtered evaluator on a hand-computed case, the four models on real Nations, the loss
options, saving / loading with keys, alignment with a renumbered KB, and the ``kgreason kge`` commands."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kgreason.cli.kge import kge_app
from kgreason.core.errors import KGReasonError
from kgreason.kb.store import TripleStore
from kgreason.kge.embeddings import KGEAlignmentError, load_kge, save_kge
from kgreason.kge.evaluate import TripleFilter, evaluate_link_prediction, realistic_ranks
from kgreason.kge.models import MODELS, build_kge_model, n3_penalty, negative_sampling_loss
from kgreason.kge.train import KGEConfig, KGETrainer, default_config, model_for, train_kge

runner = CliRunner()


# ----------------------------------------------------------------------------------------- evaluator
class TableScorer:
    """Fixed scores per query: ``table[(anchor, rel, predict)]`` → (E,) scores."""

    num_entities = 4

    def __init__(self, table: dict[tuple[int, int, str], list[float]]) -> None:
        self.table = table

    def score_all(self, anchor, rel, *, predict):
        return torch.tensor(
            [self.table[(int(a), int(r), predict)] for a, r in zip(anchor, rel, strict=True)]
        )  # (B, E)


def test_realistic_rank_is_the_mean_of_optimistic_and_pessimistic():
    scores = torch.tensor([[0.5, 0.8, 0.9, 0.8], [1.0, 1.0, 1.0, 1.0], [0.0, float("nan"), 2.0, 1.0]])
    ranks = realistic_ranks(scores, torch.tensor([1, 2, 3]))
    # row 0: one better (0.9), tied with one other → ranks 2..3; row 1: all tied → 1..4; row 2: one better
    assert ranks.tolist() == [2.5, 2.5, 2.0]
    # excluding entity 2 of row 0 removes the better one; a pair naming the target itself is ignored
    ranks = realistic_ranks(
        scores[:1], torch.tensor([1]), exclude=(torch.tensor([0, 0]), torch.tensor([2, 1]))
    )
    assert ranks.tolist() == [1.5]


def test_filtered_and_raw_metrics_by_hand_both_directions():
    # Test triple (0, r0, 1). Other known triples: (0, r0, 2) (a second true tail), (3, r0, 1) (a second true
    # head), (0, r1, 3) (another relation: must not filter the r0 queries).
    test = torch.tensor([[0, 0, 1]])
    known = torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1], [0, 1, 3]])
    model = TableScorer(
        {
            (0, 0, "tail"): [0.5, 0.8, 0.9, 0.8],  # target 1: better {2}, tied {3} → raw 2.5, filtered 1.5
            (1, 0, "head"): [0.1, 0.3, 0.3, 0.7],  # target 0: better {1, 2, 3} → raw 4, filtered (drop 3) 3
        }
    )
    filtered = evaluate_link_prediction(
        model, triples=test, filter_triples=known, num_relations=2, keep_ranks=True
    )
    assert filtered.filtered
    assert filtered.tail.mean_rank == 1.5 and filtered.head.mean_rank == 3.0
    assert filtered.both.mrr == pytest.approx((1 / 1.5 + 1 / 3) / 2)
    assert filtered.both.mean_rank == pytest.approx(2.25)
    assert filtered.both.hits_at == {1: 0.0, 3: 1.0, 10: 1.0}
    assert filtered.tail.hits_at[1] == 0.0  # a realistic 1.5 is not a hit at 1
    raw = evaluate_link_prediction(model, triples=test, filter_triples=None, num_relations=2)
    assert not raw.filtered
    assert (raw.tail.mean_rank, raw.head.mean_rank) == (2.5, 4.0)
    assert raw.both.mrr == pytest.approx((1 / 2.5 + 1 / 4) / 2)
    data = filtered.to_dict()
    assert data["head"]["count"] == data["tail"]["count"] == 1 and data["both"]["count"] == 2
    assert "MRR" in filtered.to_text()


def test_triple_filter_lists_known_answers_per_query():
    known = torch.tensor([[0, 0, 1], [0, 0, 2], [3, 0, 1], [0, 1, 3], [0, 0, 2]])  # one duplicate
    filt = TripleFilter(triples=known, num_entities=4, num_relations=2)
    rows, ents = filt.known(torch.tensor([0, 0, 2]), torch.tensor([0, 1, 0]), predict="tail")
    assert sorted(zip(rows.tolist(), ents.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 3)]
    rows, ents = filt.known(torch.tensor([1]), torch.tensor([0]), predict="head")
    assert sorted(ents.tolist()) == [0, 3] and rows.tolist() == [0, 0]
    with pytest.raises(ValueError, match="relation ids"):
        TripleFilter(triples=torch.tensor([[0, 5, 1]]), num_entities=4, num_relations=2)


# ----------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("reciprocal", [False, True])
def test_one_vs_all_scores_agree_with_pyg_forward(name, reciprocal):
    torch.manual_seed(0)
    model = build_kge_model(name, num_entities=7, num_relations=3, dim=6, reciprocal=reciprocal)
    assert model.num_relations == (6 if reciprocal else 3)
    h, r, t = torch.tensor([0, 3, 6]), torch.tensor([0, 2, 1]), torch.tensor([5, 3, 1])
    pyg = model(h, r, t)  # PyG's own forward (RotatE is built with margin 0: score = -distance)
    assert torch.allclose(model.score_triples(h, r, t), pyg, atol=1e-5)
    tails = model.score_all(h, r, predict="tail")  # (3, 7)
    assert torch.allclose(tails.gather(1, t[:, None]).squeeze(1), pyg, atol=1e-4)
    heads = model.score_all(t, r, predict="head")  # (3, 7)
    expected = model.score_triples(t, r + 3, h) if reciprocal else pyg
    assert torch.allclose(heads.gather(1, h[:, None]).squeeze(1), expected, atol=1e-4)


@pytest.fixture(scope="module")
def nations(shared_data):
    from kgreason.kb.sources import open_kb

    return open_kb(str(shared_data / "kg" / "nations"))


class RandomScorer:
    def __init__(self, num_entities: int) -> None:
        self.num_entities = num_entities
        self.generator = torch.Generator().manual_seed(0)

    def score_all(self, anchor, rel, *, predict):
        return torch.rand(anchor.numel(), self.num_entities, generator=self.generator)


@pytest.fixture(scope="module")
def random_metrics(nations):
    """Filtered metrics of random scores (Nations is small and dense: random MRR is about 0.37)."""
    return evaluate_link_prediction(
        RandomScorer(nations.num_entities),
        triples=nations.triples("test"),
        filter_triples=nations.triples(),
        num_relations=nations.num_relations,
    )


#: MRR gain over random scores each model must show after a few epochs (TransE and RotatE are weak on Nations,
#: whose relations are mostly symmetric; PyKEEN's TransE reaches about the same MRR there).
MARGIN = {"transe": 0.05, "rotate": 0.08, "distmult": 0.25, "complex": 0.25}


@pytest.mark.parametrize("name", MODELS)
def test_each_model_learns_nations(nations, random_metrics, name):
    torch.set_num_threads(1)
    epochs = {"transe": 50, "rotate": 30}.get(name, 15)
    config = default_config(name, dim=32, epochs=epochs, eval_every=5, seed=1)
    result = train_kge(nations, config=config, progress=False)
    assert result.losses[-1] < result.losses[0]
    assert result.test is not None and result.valid is not None
    got, rnd = result.test, random_metrics
    assert got.mrr > rnd.mrr + MARGIN[name], (name, got.mrr, rnd.mrr)
    assert got.mean_rank < rnd.mean_rank - 0.4, (name, got.mean_rank, rnd.mean_rank)
    assert got.head.count == got.tail.count == nations.triples("test").shape[0]
    assert result.best_epoch <= result.epochs_run == epochs


# ----------------------------------------------------------------------------------------- loss options
def test_self_adversarial_weights_raise_the_loss_and_carry_no_gradient():
    positive = torch.tensor([1.0, 0.5])
    negative = torch.tensor([[-2.0, 0.0, 1.0], [0.3, 0.3, 0.3]], requires_grad=True)
    uniform = negative_sampling_loss(positive, negative, loss="nssa", margin=2.0, adversarial_temperature=0.0)
    manual = (
        -torch.nn.functional.logsigmoid(2.0 + positive).mean()
        - torch.nn.functional.logsigmoid(-(2.0 + negative)).mean(dim=1).mean()
    ) / 2
    assert uniform.item() == pytest.approx(manual.item())
    adversarial = negative_sampling_loss(
        positive, negative, loss="nssa", margin=2.0, adversarial_temperature=1.0
    )
    assert adversarial.item() > uniform.item()  # weight moves to the hardest (highest-scoring) negatives
    (grad,) = torch.autograd.grad(adversarial, negative)
    weights = torch.softmax(negative.detach(), dim=1)
    expected = (
        weights * torch.sigmoid(2.0 + negative.detach()) / 2 / 2
    )  # d/ds softplus = σ; /2 halves, /2 mean
    assert torch.allclose(grad, expected, atol=1e-6)
    # row 2: equal negatives → adversarial weights are uniform there
    assert torch.allclose(weights[1], torch.full((3,), 1 / 3))
    ce = negative_sampling_loss(positive, negative, loss="ce")
    assert ce.item() == pytest.approx(
        torch.nn.functional.cross_entropy(
            torch.cat([positive[:, None], negative], 1), torch.zeros(2, dtype=torch.long)
        ).item()
    )


def test_n3_adds_the_cubed_moduli_of_the_batch(nations):
    config = default_config("complex", dim=8, negatives=0, n3=0.0, reciprocal=True)
    model = model_for(config, num_entities=nations.num_entities, num_relations=nations.num_relations)
    batch = nations.triples("train")[:16]
    h, r, t = batch.unbind(1)
    no_head = torch.zeros(16, dtype=torch.bool)
    plain = KGETrainer(model, config=config, train_triples=batch).batch_loss(h, r, t, no_head)
    regular = KGETrainer(
        model, config=default_config("complex", dim=8, negatives=0, n3=0.1), train_triples=batch
    )
    with_n3 = regular.batch_loss(h, r, t, no_head)
    d = 8

    def cubed_modulus(re, im):
        return (re**2 + im**2).sqrt().pow(3).sum()

    manual = (
        cubed_modulus(model.node_emb.weight[h], model.node_emb_im.weight[h])
        + cubed_modulus(model.rel_emb.weight[r], model.rel_emb_im.weight[r])
        + cubed_modulus(model.node_emb.weight[t], model.node_emb_im.weight[t])
    ) / 16
    assert (with_n3 - plain).item() == pytest.approx(0.1 * manual.item(), rel=1e-4)
    assert n3_penalty(model, h, r, t).item() == pytest.approx(manual.item(), rel=1e-4)
    assert model.entity_rows().shape == (nations.num_entities, 2 * d)
    with pytest.raises(ValueError, match="n3 applies"):
        default_config("rotate", n3=0.1)


def test_reciprocal_training_queries_both_directions_with_inverse_relations(nations):
    train = nations.triples("train")
    num_r = nations.num_relations
    config = default_config("distmult", dim=8, negatives=4, loss="nssa", reciprocal=True, n3=0.0)
    model = model_for(config, num_entities=nations.num_entities, num_relations=num_r)
    anchor, rel, target, is_head = KGETrainer(model, config=config, train_triples=train)._queries()
    n = train.shape[0]
    assert anchor.shape == (2 * n,) and not bool(is_head.any())
    assert torch.equal(rel[n:], train[:, 1] + num_r) and torch.equal(anchor[n:], train[:, 2])
    plain = default_config("distmult", dim=8, negatives=4, loss="nssa", reciprocal=False, n3=0.0)
    model = model_for(plain, num_entities=nations.num_entities, num_relations=num_r)
    anchor, rel, target, is_head = KGETrainer(model, config=plain, train_triples=train)._queries()
    assert anchor.shape == (n,) and 0 < int(is_head.sum()) < n  # one random side per triple
    assert torch.equal(torch.where(is_head, anchor, target), train[:, 2])


def test_kvsall_targets_every_known_answer_of_a_query():
    triples = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 0, 2]])
    torch.manual_seed(0)
    model = build_kge_model("distmult", num_entities=3, num_relations=1, dim=4, reciprocal=True)
    plain = KGETrainer(
        model, config=default_config("distmult", dim=4, kvsall=True, n3=0.0), train_triples=triples
    )
    anchor, rel, _, starts, counts, answers = plain._kvsall_items()
    # queries (0, r, ?) → {1, 2}; (1, r, ?) → {2}; (1, r⁻¹, ?) → {0}; (2, r⁻¹, ?) → {0, 1}
    found = {
        (int(a), int(r)): sorted(answers[s : s + c].tolist())
        for a, r, s, c in zip(anchor, rel, starts, counts, strict=True)
    }
    assert found == {(0, 0): [1, 2], (1, 0): [2], (1, 1): [0], (2, 1): [0, 1]}
    items = torch.arange(4)
    manual, cubes = 0.0, 0.0
    for a, r, s, c in zip(anchor, rel, starts, counts, strict=True):
        log_probs = torch.log_softmax(model.score_all(a[None], r[None], predict="tail"), dim=1)[0]  # (E,)
        manual -= log_probs[answers[s : s + c]].mean()
        w = model.node_emb.weight
        cubes += w[a].abs().pow(3).sum() + model.rel_emb.weight[r].abs().pow(3).sum()
        cubes += w[answers[s : s + c]].abs().pow(3).sum(-1).mean()
    assert plain.kvsall_loss(items).item() == pytest.approx(manual.item() / 4, rel=1e-5)
    regular = KGETrainer(
        model, config=default_config("distmult", dim=4, kvsall=True, n3=0.5), train_triples=triples
    )
    assert regular.kvsall_loss(items).item() == pytest.approx((manual + 0.5 * cubes).item() / 4, rel=1e-5)
    with pytest.raises(ValueError, match="kvsall needs"):
        default_config("rotate", kvsall=True)


def test_config_validation_names_the_problem():
    with pytest.raises(ValueError, match="needs loss = 'ce'"):
        KGEConfig(model="distmult", negatives=0, loss="nssa").validate()
    with pytest.raises(ValueError, match="unknown KGE model"):
        default_config("transh")
    with pytest.raises(ValueError, match="unknown KGE config field"):
        default_config("rotate", dims=3)


def test_per_positive_and_sparse_negatives_train(nations, random_metrics):
    torch.set_num_threads(1)
    for extra in ({"shared_negatives": False}, {"sparse": True, "epochs": 20}):
        config = default_config("rotate", dim=16, **{"epochs": 30, "negatives": 32, **extra})
        result = train_kge(nations, config=config, progress=False)
        assert result.test.mrr > random_metrics.mrr + 0.05, extra


# ----------------------------------------------------------------------------------------- save / load
def _small_run(kb, name="complex"):
    config = default_config(name, dim=8, epochs=2, reciprocal=True)
    return train_kge(kb, config=config, progress=False)


def test_save_load_round_trip(nations, tmp_path):
    result = _small_run(nations)
    keys = [nations.entity_key(i) for i in range(nations.num_entities)]
    rels = [nations.relation_key(i) for i in range(nations.num_relations)]
    path = save_kge(
        result.model,
        path=tmp_path / "run",
        entity_keys=keys,
        relation_keys=rels,
        config=result.config.to_dict(),
        metrics=result.metrics_dict(),
        kb_name=nations.name,
    )
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "embeddings.safetensors",
        "entities.txt",
        "relations.txt",
    ]
    emb = load_kge(path)
    entity, relation = result.model.export_embeddings()
    assert torch.equal(emb.entity, entity) and torch.equal(emb.relation, relation)
    assert emb.entity.shape == (nations.num_entities, 16)  # re | im
    assert emb.relation.shape == (2 * nations.num_relations, 16)  # reciprocal: inverse rows follow
    assert emb.entity_keys == keys and emb.relation_keys == rels and emb.reciprocal
    meta = json.loads((path / "config.json").read_text())
    assert meta["model"] == "complex" and meta["dim"] == 8 and "imaginary" in meta["entity_layout"]
    assert meta["metrics"]["test"]["both"]["mrr"] == pytest.approx(result.test.mrr)
    rebuilt = emb.build_model()
    h, r = torch.tensor([0, 5]), torch.tensor([1, 2])
    with torch.no_grad():
        for side in ("head", "tail"):
            assert torch.equal(
                rebuilt.score_all(h, r, predict=side), result.model.score_all(h, r, predict=side)
            )
    # overwriting a run folder works; a foreign non-empty folder is refused
    save_kge(result.model, path=path, entity_keys=keys, relation_keys=rels)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing"):
        save_kge(result.model, path=tmp_path / "other", entity_keys=keys, relation_keys=rels)
    (path / "entities.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match="entities.txt: 2 lines, expected 14"):
        load_kge(path)


def _permuted(kb, perm: np.ndarray, *, drop_last: bool = False) -> TripleStore:
    """``kb`` with entity ``i`` renumbered ``perm[i]`` (and optionally one extra unknown entity)."""
    keys = [""] * kb.num_entities
    for old, new in enumerate(perm):
        keys[new] = kb.entity_key(old)
    if drop_last:
        keys.append("atlantis")
    splits = {}
    for split in kb.splits:
        rows = kb.triples(split).numpy().copy()
        rows[:, 0], rows[:, 2] = perm[rows[:, 0]], perm[rows[:, 2]]
        splits[split] = rows
    rel_keys = [kb.relation_key(i) for i in range(kb.num_relations)]
    return TripleStore(name="permuted", entity_keys=keys, relation_keys=rel_keys, split_triples=splits)


def test_entity_features_align_by_key_with_a_renumbered_kb(nations, tmp_path):
    result = _small_run(nations, "rotate")
    keys = [nations.entity_key(i) for i in range(nations.num_entities)]
    rels = [nations.relation_key(i) for i in range(nations.num_relations)]
    emb = load_kge(save_kge(result.model, path=tmp_path / "run", entity_keys=keys, relation_keys=rels))
    perm = np.random.default_rng(0).permutation(nations.num_entities)
    permuted = _permuted(nations, perm)
    features = emb.entity_features_for(permuted)  # (E, 2d)
    assert features.shape == (nations.num_entities, 2 * 8)
    for old, new in enumerate(perm):
        assert torch.equal(features[new], emb.entity[old])
    # the same metrics through key alignment
    model = emb.build_model()
    same = evaluate_link_prediction(model, triples=nations.triples("test"), filter_triples=nations.triples())
    via = evaluate_link_prediction(
        model,
        triples=emb.remap_triples(permuted, permuted.triples("test")),
        filter_triples=emb.remap_triples(permuted, permuted.triples()),
    )
    assert via.mrr == pytest.approx(same.mrr)
    # an entity the embeddings lack: a clear error, or zeros with a count
    bigger = _permuted(nations, perm, drop_last=True)
    with pytest.raises(KGEAlignmentError, match="1 of 15 entities .*atlantis"):
        emb.entity_features_for(bigger)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        padded = emb.entity_features_for(bigger, missing="zeros")
    assert padded.shape == (15, 16) and torch.all(padded[14] == 0)
    assert any("1 of 15 entities" in str(w.message) for w in caught)
    assert emb.align(bigger, missing="zeros").missing == 1


def test_an_aligned_kge_scorer_scores_in_another_kbs_id_order(nations, tmp_path):
    result = _small_run(nations, "complex")
    keys = [nations.entity_key(i) for i in range(nations.num_entities)]
    rels = [nations.relation_key(i) for i in range(nations.num_relations)]
    emb = load_kge(save_kge(result.model, path=tmp_path / "run", entity_keys=keys, relation_keys=rels))
    perm = np.random.default_rng(1).permutation(nations.num_entities)
    permuted = _permuted(nations, perm)
    scorer, model = emb.scorer_for(permuted), emb.build_model()
    anchor, rel = torch.tensor([0, 5, 9]), torch.tensor([1, 2, 3])
    inverse = torch.from_numpy(np.argsort(perm))  # permuted id -> original id
    for predict in ("tail", "head"):
        got = scorer.score_all(
            torch.from_numpy(perm)[anchor], rel, predict=predict
        )  # (3, E) permuted columns
        want = model.score_all(anchor, rel, predict=predict)[:, inverse]
        assert torch.allclose(got, want)
    same = evaluate_link_prediction(model, triples=nations.triples("test"), filter_triples=nations.triples())
    via = evaluate_link_prediction(
        scorer, triples=permuted.triples("test"), filter_triples=permuted.triples()
    )
    assert via.mrr == pytest.approx(same.mrr)
    # an entity the embeddings lack: the query's mean as a candidate, and an uninformative row as an anchor
    bigger = _permuted(nations, perm, drop_last=True)
    padded = emb.scorer_for(bigger).score_all(torch.tensor([14, 0]), torch.tensor([0, 0]), predict="tail")
    assert torch.all(padded[0] == 0)
    assert padded[1, 14] == pytest.approx(float(padded[1, :14].mean()), abs=1e-6)


# ----------------------------------------------------------------------------------------- CLI
def test_cli_train_then_eval_on_nations(shared_data, tmp_path):
    kb = str(shared_data / "kg" / "nations")
    out = tmp_path / "run"
    result = runner.invoke(
        kge_app,
        [
            "train",
            "--kb",
            kb,
            "--model",
            "distmult",
            "--dim",
            "16",
            "--epochs",
            "5",
            "--out",
            str(out),
            "--seed",
            "3",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    assert (out / "embeddings.safetensors").is_file()
    result = runner.invoke(kge_app, ["eval", str(out), "--kb", kb, "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["filtered"] and set(data) >= {"head", "tail", "both"}
    assert data["both"]["mrr"] == pytest.approx(trained["test"]["both"]["mrr"], abs=1e-6)
    table = runner.invoke(kge_app, ["eval", str(out), "--kb", kb, "--split", "valid"])
    assert table.exit_code == 0 and "both" in table.output and "H@10" in table.output
    bad = runner.invoke(kge_app, ["eval", str(out), "--kb", kb, "--split", "dev"])
    assert bad.exit_code == 2 and "no split 'dev'" in bad.output


def test_cli_help_documents_every_option():
    for command in ("train", "eval"):
        text = runner.invoke(kge_app, [command, "--help"]).output
        assert "--kb" in text
    text = runner.invoke(kge_app, ["train", "--help"], env={"COLUMNS": "250"}).output
    for option in (
        "--model",
        "--dim",
        "--epochs",
        "--batch-size",
        "--lr",
        "--negatives",
        "--adversarial-temperature",
        "--reciprocal",
        "--n3",
        "--out",
        "--seed",
        "--device",
        "--data-dir",
    ):
        assert option in text


def test_cli_options_all_have_help_and_configs_validate():
    from pathlib import Path

    import typer.main
    import yaml

    from kgreason.core.config import build_config

    group = typer.main.get_command(kge_app)
    for name in ("train", "eval"):
        for param in group.commands[name].params:
            assert getattr(param, "help", None), f"kge {name}: {param.name} has no help text"
    configs = sorted((Path(__file__).resolve().parents[1] / "configs" / "kge").glob("*.yaml"))
    assert configs
    for path in configs:
        data = yaml.safe_load(path.read_text())
        build_config(KGEConfig, data)
        default_config(data.pop("model"), **data)  # validates the combination


def test_kge_is_mounted_in_the_main_cli():
    from typer.testing import CliRunner

    from kgreason.cli import app

    out = CliRunner().invoke(app, ["kge", "--help"])
    assert out.exit_code == 0 and "train" in out.output and "eval" in out.output


# ----------------------------------------------------------------------------------------- run control
def _trainer(kb, **fields):
    settings = {"dim": 16, "eval_every": 1, "patience": 0, "time_budget": 0, "seed": 4, **fields}
    config = default_config("distmult", **settings)
    model = model_for(config, num_entities=kb.num_entities, num_relations=kb.num_relations)
    return KGETrainer(
        model,
        config=config,
        train_triples=kb.triples("train"),
        valid_triples=kb.triples("valid"),
        filter_triples=kb.triples(),
    )


def _weights(result):
    return {k: v.clone() for k, v in result.model.state_dict().items()}


def test_a_resumed_run_equals_the_uninterrupted_one(nations, tmp_path):
    torch.set_num_threads(1)
    whole = _trainer(nations, epochs=6).fit(progress=False, checkpoint=tmp_path / "a.pt")
    first = _trainer(nations, epochs=3).fit(progress=False, checkpoint=tmp_path / "b.pt")
    assert first.epochs_run == 3
    resumed = _trainer(nations, epochs=6).fit(progress=False, checkpoint=tmp_path / "b.pt")
    assert resumed.epochs_run == whole.epochs_run == 6
    assert resumed.losses == whole.losses
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert untimed(resumed.history) == untimed(whole.history)
    assert all(h["seconds"] > 0 for h in resumed.history[:-1])
    assert resumed.best_epoch == whole.best_epoch
    for name, value in _weights(whole).items():
        assert torch.equal(value, _weights(resumed)[name]), name
    # a checkpoint of another configuration is refused, naming the file
    with pytest.raises(KGReasonError, match=r"b\.pt: checkpoint of another configuration"):
        _trainer(nations, epochs=6, lr=0.05).fit(progress=False, checkpoint=tmp_path / "b.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(KGReasonError, match=r"junk\.pt: not a kgreason KGE checkpoint"):
        _trainer(nations, epochs=6).fit(progress=False, checkpoint=tmp_path / "junk.pt")


def test_the_time_budget_stops_training_and_keeps_the_best_validated_parameters(nations, tmp_path):
    result = _trainer(nations, epochs=50, time_budget=1e-6).fit(progress=False, checkpoint=tmp_path / "c.pt")
    assert result.epochs_run == 1 and len(result.losses) == 1
    assert result.valid is not None and [h["epoch"] for h in result.history] == [1]
    again = _trainer(nations, epochs=50, time_budget=1e-6).fit(progress=False, checkpoint=tmp_path / "c.pt")
    assert again.epochs_run == 1  # the budget was spent: the resumed run trains no further
    longer = _trainer(nations, epochs=3, time_budget=0).fit(progress=False, checkpoint=tmp_path / "c.pt")
    assert longer.epochs_run == 3  # a larger budget continues the same run


def test_validation_during_training_ranks_a_fixed_sample_and_reports_all(nations):
    trainer = _trainer(nations, epochs=2, valid_sample=40)
    sample = trainer._valid_subset()
    assert sample.shape == (40, 3) and torch.equal(sample, _trainer(nations, valid_sample=40)._valid_subset())
    result = trainer.fit(progress=False)
    assert result.valid.both.count == 2 * len(nations.triples("valid"))


def test_the_thread_probe_changes_nothing_and_the_fastest_count_is_kept(nations):
    from kgreason.core.device import fastest_threads

    probed = _trainer(nations, epochs=2)
    for _ in range(3):
        probed.probe_step()
    plain = _trainer(nations, epochs=2)
    a, b = probed.fit(progress=False), plain.fit(progress=False)
    assert a.losses == b.losses
    assert all(torch.equal(v, _weights(b)[k]) for k, v in _weights(a).items())

    import time as clock

    def slower_with_more_threads():
        clock.sleep(0.002 * torch.get_num_threads())

    def faster_with_more_threads():
        clock.sleep(0.01 / torch.get_num_threads())

    before = torch.get_num_threads()
    try:
        choice = fastest_threads(slower_with_more_threads, candidates=[2, 1], repeats=2)
        assert choice.threads == 1 and torch.get_num_threads() == 1 and set(choice.seconds) == {1, 2}
        assert fastest_threads(faster_with_more_threads, candidates=[1, 2], repeats=2).threads == 2
    finally:
        torch.set_num_threads(before)


def test_cli_train_refuses_bad_threads_and_foreign_run_folders_before_training(shared_data, tmp_path):
    kb = str(shared_data / "kg" / "nations")
    bad = runner.invoke(kge_app, ["train", "--kb", kb, "--threads", "many", "--out", str(tmp_path / "r")])
    assert (
        bad.exit_code == 2 and "--threads: expected 'auto' or a whole number >= 1, got 'many'" in bad.output
    )
    assert "Traceback" not in bad.output and not (tmp_path / "r").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(kge_app, ["train", "--kb", kb, "--out", str(foreign), "--epochs", "1"])
    assert result.exit_code == 2 and "a non-empty folder kgreason did not write" in result.output
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_a_checkpoint_of_another_kb_is_one_error_naming_the_file(nations, tmp_path):
    _trainer(nations, epochs=1).fit(progress=False, checkpoint=tmp_path / "n.pt")
    config = _trainer(nations, epochs=2).config
    other = model_for(config, num_entities=nations.num_entities + 3, num_relations=nations.num_relations)
    trainer = KGETrainer(other, config=config, train_triples=nations.triples("train"))
    with pytest.raises(KGReasonError, match=r"n\.pt: checkpoint of another KB or model \(Error"):
        trainer.fit(progress=False, checkpoint=tmp_path / "n.pt")
