"""Text link prediction: GraIL's sampled-negative protocol, the contrastive loss, the neighbourhood prior,
training / resume / save-load on a tiny KB with a tiny encoder, and the inductive loader on the real splits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kgreason.kb.store import TripleStoreBuilder
from kgreason.kge.evaluate import candidate_counts, sampled_hits
from kgreason.models.text_link import (
    LinkTexts,
    NeighbourhoodPrior,
    TextLinkConfig,
    TextLinkPredictor,
    TextLinkScorer,
    build_text_link_predictor,
    entity_text,
    relation_text,
)


# ----------------------------------------------------------------------------------- sampled protocol
def test_sampled_hits_matches_drawing_negatives():
    rng = np.random.default_rng(0)
    candidates = torch.tensor([100, 100, 100, 40])
    ranks = torch.tensor([1.0, 8.0, 30.0, 21.0])  # 0, 7, 29 and 20 candidates score higher
    expected = sampled_hits(ranks, candidates, negatives=49, k=10)
    assert expected[0] == pytest.approx(1.0)
    for i in range(4):
        better = int(ranks[i]) - 1
        draws = rng.integers(0, int(candidates[i]), size=(20_000, 49)) < better  # with replacement
        simulated = float(((draws.sum(1) + 1) <= 10).mean())
        assert float(expected[i]) == pytest.approx(simulated, abs=0.01)
    assert float(expected[2]) < float(expected[1])


def test_candidate_counts_leave_out_target_anchor_and_known_answers():
    anchor, targets = torch.tensor([0, 1]), torch.tensor([2, 1])
    exclude = (
        torch.tensor([0, 0, 0, 1]),
        torch.tensor([3, 2, 0, 4]),
    )  # row 0: 3 known; target and anchor too
    counts = candidate_counts(10, anchor, targets, exclude)
    assert counts.tolist() == [10 - 1 - 1 - 1, 10 - 1 - 1]


# ------------------------------------------------------------------------------------------- fixtures
def tiny_kb():
    """Twelve animals and their classes: ``is_a`` and its inverse-free partner ``eats``."""
    builder = TripleStoreBuilder(name="zoo")
    facts = [
        ("cat", "is_a", "mammal"), ("dog", "is_a", "mammal"), ("cow", "is_a", "mammal"),
        ("horse", "is_a", "mammal"), ("eagle", "is_a", "bird"), ("sparrow", "is_a", "bird"),
        ("owl", "is_a", "bird"), ("crow", "is_a", "bird"), ("trout", "is_a", "fish"), ("salmon", "is_a", "fish"),
        ("cat", "eats", "trout"), ("eagle", "eats", "salmon"),
    ]  # fmt: skip
    for h, r, t in facts[:-2]:
        builder.add(h, r, t, "train")
    builder.add("pike", "is_a", "fish", "train")
    builder.add(*facts[-2], "valid")
    builder.add(*facts[-1], "test")
    for key in ("cat", "dog", "cow", "horse", "eagle", "sparrow", "owl", "crow", "trout", "salmon", "pike"):
        builder.add_label(key, key, preferred=True)
    builder.entity_descriptions[builder.entity_ids["trout"]] = "a freshwater fish"
    return builder.build()


@pytest.fixture(scope="module")
def tiny_model(tiny_encoder):
    torch.manual_seed(0)
    return build_text_link_predictor(TextLinkConfig(encoder=str(tiny_encoder), max_length=32))


def test_texts_name_describe_and_read_nell_and_freebase_keys():
    kb = tiny_kb()
    trout = next(e for e in range(kb.num_entities) if kb.entity_key(e) == "trout")
    assert entity_text(kb, trout) == "trout: a freshwater fish"
    assert entity_text(kb, trout, descriptions=False) == "trout"
    builder = TripleStoreBuilder(name="nell")
    builder.add("concept:city:new_york", "concept:citylocatedinstate", "concept:stateorprovince:ny", "train")
    builder.add("/m/01", "/film/film/genre", "/m/02", "train")
    nell = builder.build()
    assert entity_text(nell, 0) == "new york (city)"
    assert relation_text(nell, 0) == "citylocatedinstate"
    assert relation_text(nell, 1) == nell.relation_label(1) == "film film genre"
    texts = LinkTexts.from_kb(nell)
    assert texts.query(1, inverse=True) == "inverse film film genre"


# ------------------------------------------------------------------------------------- loss and prior
def test_contrastive_loss_masks_known_answers_and_keeps_finite_gradients(tiny_model):
    model = tiny_model.train()
    model.reset_queue()
    q = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1).requires_grad_()
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    ids = torch.tensor([0, 1, 2, 3])
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[0, 1] = True  # entity 1 also answers query 0: not a negative of it
    out = model.contrastive(
        q, a, a.clone(), answer_ids=ids, anchor_ids=torch.tensor([5, 6, 2, 7]), known=known
    )
    assert math.isfinite(float(out.loss.detach()))
    assert out.logits.shape == (4, 4 + 1)
    assert out.logits[0, 1] == float("-inf") and out.logits[2, 4] == float("-inf")  # anchor 2 is the answer
    out.loss.backward()
    assert torch.isfinite(model.log_inv_t.grad) and torch.isfinite(q.grad).all()
    model.log_inv_t.grad = None
    again = model.contrastive(q, a, None, answer_ids=ids, anchor_ids=ids, known=known)  # pre-batch column
    assert again.logits.shape == (4, 4 + 4)
    model.reset_queue()


def test_prior_rules_out_the_anchor_and_raises_neighbours():
    triples = np.array([[0, 0, 1], [1, 0, 2], [3, 1, 3]])  # relation 1 is reflexive
    prior = NeighbourhoodPrior.from_triples(triples, num_entities=5, hops=1, weight=0.5)
    scores = torch.zeros(2, 5)
    out = prior.apply(scores, torch.tensor([0, 3]), torch.tensor([0, 1]))
    assert out[0].tolist() == [float("-inf"), 0.5, 0.0, 0.0, 0.0]
    assert out[1, 3] == 0.0  # reflexive relation: the anchor may answer
    two = prior.with_weight(hops=2, weight=0.5).apply(scores, torch.tensor([0, 3]), torch.tensor([0, 1]))
    assert two[0, 2] == 0.5 and two[0, 4] == 0.0


# ------------------------------------------------------------------------------- training and saving
def test_training_fits_the_tiny_kb_resumes_and_round_trips(tiny_model, tmp_path):
    from kgreason.training.text_link import TextLinkTrainingConfig, train_text_link

    kb = tiny_kb()
    texts = LinkTexts.from_kb(kb)
    config = TextLinkTrainingConfig(epochs=1, batch_size=32, lr=4e-3, warmup_ratio=0.0, precision="fp32")
    first = train_text_link(tiny_model, kb, config=config, run_dir=tmp_path / "run", progress=False)
    assert [h["epoch"] for h in first.history] == [1] and (tmp_path / "run" / "last").is_dir()
    config.epochs = 40
    result = train_text_link(first.model, kb, config=config, run_dir=tmp_path / "run", progress=False)
    history = result.history
    assert [h["epoch"] for h in history] == list(range(1, 41))  # resumed after epoch 1
    assert history[0]["train_accuracy"] < 0.3 and history[-1]["train_accuracy"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"] / 4
    assert result.best_epoch == max(history, key=lambda h: h["dev_mrr"])["epoch"]
    loaded = TextLinkPredictor.from_pretrained(tmp_path / "run" / "best")
    a = TextLinkScorer(result.model, texts).score_all(torch.tensor([0]), torch.tensor([0]), predict="tail")
    b = TextLinkScorer(loaded, texts).score_all(torch.tensor([0]), torch.tensor([0]), predict="tail")
    assert torch.allclose(a, b, atol=1e-5)


def test_faiss_top_k_agrees_with_full_scores(tiny_model):
    kb = tiny_kb()
    scorer = TextLinkScorer(tiny_model, LinkTexts.from_kb(kb))
    anchor, rel = torch.tensor([0, 4]), torch.tensor([0, 0])
    full = scorer.score_all(anchor, rel, predict="tail")
    scores, ids = scorer.top_k(anchor, rel, predict="tail", k=3)
    assert ids.tolist() == full.topk(3).indices.tolist()
    assert np.allclose(scores, full.topk(3).values.numpy(), atol=1e-5)


# --------------------------------------------------------------------------------------- real splits
@pytest.mark.parametrize(
    ("dataset", "train", "inference", "named"), [("WN18RR", 5410, 1618, True), ("nell", None, None, False)]
)
def test_inductive_splits_load_with_texts_and_disjoint_entities(
    shared_data, dataset, train, inference, named
):
    from kgreason.kge.inductive import load_inductive

    split = load_inductive(shared_data, dataset, 1)
    if train is not None:
        assert len(split.train.triples("train")) == train
        assert len(split.inference.triples("train")) == inference
    assert split.check_disjoint() == 0
    assert all(split.inference.has_label(e) for e in range(split.inference.num_entities)) == named
    texts = LinkTexts.from_kb(split.inference)
    assert all(t and not t.startswith("concept:") for t in texts.entities)  # no raw concept:type:name keys
    assert named or all(t.endswith(")") for t in texts.entities)  # NELL: "name (type)"


def test_inductive_names_are_checked():
    from kgreason.core.errors import ConfigError
    from kgreason.kge.inductive import inductive_name

    assert inductive_name("wn18rr", 2) == "WN18RR_v2"
    with pytest.raises(ConfigError, match="expected one of WN18RR, fb237, nell"):
        inductive_name("fb15k", 1)
    with pytest.raises(ConfigError, match="version"):
        inductive_name("nell", 5)


# --------------------------------------------------------------------------------------------- CLI
def _zoo_folder(tmp_path):
    kb = tiny_kb()
    folder = tmp_path / "zoo"
    (folder / "text_kgbert").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        rows = [
            "\t".join((kb.entity_key(h), kb.relation_key(r), kb.entity_key(t)))
            for h, r, t in kb.triple_array(split).tolist()
        ]
        (folder / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    names = [f"{kb.entity_key(e)}\t{kb.entity_key(e)}, an animal or a class" for e in range(kb.num_entities)]
    (folder / "text_kgbert" / "entity2text.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return folder


def test_kgc_train_and_eval_write_metrics_and_predictions(tiny_encoder, tmp_path):
    from typer.testing import CliRunner

    from kgreason.cli import app

    folder = _zoo_folder(tmp_path)
    out = tmp_path / "run"
    sets = [
        f"model.encoder={tiny_encoder}",
        "model.max_length=32",
        "trainer.epochs=2",
        "trainer.batch_size=16",
    ]
    args = ["kgc", "train", "--kb", str(folder), "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["both"]["count"] == 2
        and metrics["sampled"]["negatives"] == 49
        and len(metrics["history"]) == 2
    )
    lines = (out / "predictions.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["head", "relation", "tail", "predict", "rank", "top"]
    assert len(lines) == 3 and lines[1].startswith("eagle\teats\tsalmon\ttail\t")
    assert len(lines[1].split("\t")[-1].split(",")) == 10
    again = CliRunner().invoke(app, ["kgc", "eval", str(out), "--kb", str(folder), "--json", "--names-only"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output[again.output.index("{") :])["both"]["count"] == 2


def test_kgc_eval_fuses_kg_embeddings_with_weights_chosen_on_dev(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from kgreason.cli import app

    folder = _zoo_folder(tmp_path)
    tiny_model.save_pretrained(tmp_path / "run" / "best")
    kge_out = tmp_path / "kge"
    trained = CliRunner().invoke(
        app,
        [
            "kge",
            "train",
            "--kb",
            str(folder),
            "--dim",
            "8",
            "--epochs",
            "2",
            "--threads",
            "1",
            "--out",
            str(kge_out),
        ],
    )
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(
        app, ["kgc", "eval", str(tmp_path / "run"), "--kb", str(folder), "--kge", str(kge_out), "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])
    fusion = metrics["fusion"]
    assert metrics["both"]["count"] == 2 and set(fusion["weights"]) == {"text", "kge"}
    assert sum(fusion["weights"].values()) == pytest.approx(1.0) and fusion["tried"] == 11 * 6
    fixed = CliRunner().invoke(
        app,
        ["kgc", "eval", str(tmp_path / "run"), "--kb", str(folder), "--kge", str(kge_out), "--hops", "1",
         "--weight", "0.5", "--json"],
    )  # fmt: skip
    assert fixed.exit_code == 0, fixed.output
    fusion = json.loads(fixed.output[fixed.output.index("{") :])["fusion"]
    assert fusion["prior"] == {"hops": 1, "weight": 0.5} and fusion["tried"] == 11
    zero = CliRunner().invoke(app, ["kgc", "eval", "--zero-shot", "--kb", str(folder), "--json"])
    assert zero.exit_code == 0, zero.output  # the embedded pretrained MiniLM, untrained
    assert json.loads(zero.output[zero.output.index("{") :])["run"] == "zero-shot"
    both = CliRunner().invoke(app, ["kgc", "eval", str(tmp_path / "run"), "--zero-shot", "--kb", str(folder)])
    assert both.exit_code == 2 and "give RUN_DIR" in both.output
    unseen = CliRunner().invoke(
        app, ["kgc", "eval", "--zero-shot", "--inductive", "WN18RR_v1", "--kge", str(kge_out)]
    )
    assert unseen.exit_code == 2 and "cannot score an inductive graph's unseen entities" in unseen.output


def test_kgc_bad_input_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from kgreason.cli import app

    result = CliRunner().invoke(app, ["kgc", "train", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "give exactly one of --kb PATH or --inductive NAME" in result.output
    result = CliRunner().invoke(app, ["kgc", "train", "--out", str(tmp_path / "r"), "--inductive", "WN18RR"])
    assert result.exit_code == 2 and "expected NAME_vN" in result.output
    result = CliRunner().invoke(
        app,
        [
            "kgc",
            "train",
            "--out",
            str(tmp_path / "r"),
            "--inductive",
            "WN18RR_v1",
            "--set",
            "trainer.epoch=1",
        ],
    )
    assert result.exit_code == 2 and "unknown config key 'trainer.epoch'" in result.output
    assert "Traceback" not in result.output


def test_kgc_eval_ranks_an_inductive_graph(tiny_model, tmp_path, shared_data):
    from typer.testing import CliRunner

    from kgreason.cli import app

    tiny_model.save_pretrained(tmp_path / "run" / "best")
    args = [
        "kgc",
        "eval",
        str(tmp_path / "run"),
        "--inductive",
        "WN18RR_v1",
        "--hops",
        "1",
        "--weight",
        "0.2",
    ]
    result = CliRunner().invoke(app, [*args, "--json", "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])
    assert metrics["kb"] == "WN18RR_v1_ind" and metrics["both"]["count"] == 2 * 188
    # 922 entities: a random tiny encoder with the 1-hop prior ranks far above chance (MRR ~ 0.008)
    assert metrics["both"]["mrr"] > 0.1 and metrics["sampled"]["hits_at_10"] > 0.5


def test_benchmark_report_lists_every_row_and_handles_zero_shot_only():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import kgc as bench
    finally:
        sys.path.pop(0)
    metrics = {"mrr": 0.5, "hits_at_1": 0.4, "hits_at_10": 0.8, "hits_at_10_50": 0.97}
    prior = {"hops": 1, "weight": 0.5, "tried": []}
    probe = {"mrr_change": -0.2, "low": -0.3, "high": -0.1}
    run = {
        "seed": 13, "best_epoch": 1, "train_seconds": 60.0, "prior": prior,
        "history": [{"epoch": 1, "dev_mrr": 0.3, "queries_per_second": 16.0}],
        **{k: metrics for k in ("text+structure", "text", "names_only", "shuffled_descriptions")},
        "probes": {k: probe for k in ("structure_removed", "descriptions_removed", "descriptions_shuffled")},
    }  # fmt: skip
    split = {
        "split": "WN18RR_v1",
        "zero_shot": {**metrics, "dev_mrr": 0.2},
        "zero_shot+structure": {**metrics, "prior": prior},
        "runs": [run, {**run, "seed": 14}],
    }
    report = {"command": "c", "machine": "m", "settings": "s", "splits": [split, {**split, "runs": []}]}
    text = bench.markdown(report)
    assert text.count("| WN18RR_v1 | kgc (fine-tuned) + neighbourhood prior |") == 1  # not for zero-shot only
    assert text.count("| WN18RR_v1 | MiniLM zero-shot + neighbourhood prior |") == 2
    assert "| 0.500 ± 0.000 | 0.400 ± 0.000 | 0.800 ± 0.000 | 0.970 ± 0.000 | 60 |" in text
    assert "| WN18RR_v1 | NBFNet (published) | graph structure | 0.684 | – | – | 0.948 | – |" in text
    assert "-0.200 [-0.300, -0.100]; -0.200 [-0.300, -0.100]" in text


def test_inductive_graphs_number_relations_alike(shared_data):
    """A relation id means the same relation in the training and the inference graph (the path GNN and KGE
    relation vectors are looked up by id)."""
    from kgreason.kge.inductive import load_inductive

    for dataset in ("fb237", "WN18RR"):
        split = load_inductive(shared_data, dataset, 1)
        train, inference = split.train, split.inference
        assert inference.num_relations >= 1
        for r in range(inference.num_relations):
            if r < train.num_relations:
                assert inference.relation_key(r) == train.relation_key(r), (dataset, r)
        used = {int(r) for r in inference.triple_array()[:, 1]}
        assert all(inference.relation_key(r) in set(train.relation_keys) for r in used), dataset


def test_with_relation_order_renumbers_relations_and_keeps_every_fact():
    import numpy as np

    from kgreason.kb.store import TripleStore

    store = TripleStore(
        name="s",
        entity_keys=["a", "b", "c"],
        relation_keys=["likes", "hates"],
        split_triples={"train": np.array([[0, 0, 1], [1, 1, 2]]), "test": np.array([[2, 0, 0]])},
        relation_labels={0: "likes it", 1: "hates it"},
    )
    renumbered = store.with_relation_order(["knows", "hates"])
    assert renumbered.relation_keys == ["knows", "hates", "likes"]

    def keyed(kb, split):
        return {
            (kb.entity_key(h), kb.relation_key(r), kb.entity_key(t))
            for h, r, t in kb.triple_array(split).tolist()
        }

    for split in ("train", "test"):
        assert keyed(renumbered, split) == keyed(store, split)
    assert renumbered.relation_label(2) == "likes it" and renumbered.relation_label(1) == "hates it"
