"""The reasoning suite: suite files validate without training, the runner's pieces, and a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kgreason.bench.reasoning import accuracy_by_depth, cap_per_depth, mean_std, stratified_sample
from kgreason.bench.suite import available_suites, load_suite, variant_trainer_config
from kgreason.core.errors import ConfigError
from kgreason.core.example import Example


@pytest.mark.parametrize("name", available_suites())
def test_every_shipped_suite_validates(name: str) -> None:
    suite = load_suite(name)
    assert suite.name == name
    assert suite.variants and suite.seeds and suite.description.strip()
    assert all(anchor.citation for anchor in suite.anchors)
    for variant in suite.variants:
        assert variant_trainer_config(suite, variant).epochs >= 1


def test_the_main_suites_ship() -> None:
    assert {"quick", "clutrr-089907f8", "clutrr-db9b8f04", "clutrr-robust"} <= set(available_suites())
    assert len(load_suite("clutrr-089907f8").seeds) >= 3


def test_unknown_keys_and_values_are_rejected_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'variants'"):
        load_suite("quick", overrides=["variantz=[text]"])
    with pytest.raises(ConfigError, match="neuro_symbolic"):
        load_suite("quick", overrides=["variants=[neuro_symbolik]"])
    with pytest.raises(ConfigError, match="perturbation"):
        load_suite("quick", overrides=["probes.perturbation_kinds=[shuffle]"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvariant_trainer:\n  graph: {epoch: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="epochs"):
        load_suite(bad)
    with pytest.raises(ConfigError, match="no suite named"):
        load_suite("quik")


def _story(depth: int, label: str) -> Example:
    return Example(text="x", label=label, metadata={"depth": depth})


def test_depth_helpers() -> None:
    examples = [_story(d, "son") for d in (2, 2, 2, 3, 3, 4)]
    assert [e.metadata["depth"] for e in cap_per_depth(examples, 2)] == [2, 2, 3, 3, 4]
    sample = stratified_sample(examples, size=3, seed=0)
    assert sorted(e.metadata["depth"] for e in sample) == [2, 3, 4]
    assert stratified_sample(examples, size=3, seed=0) == sample
    accuracy = accuracy_by_depth(["son", "aunt", "son", "son", "aunt", "son"], examples)
    assert accuracy == pytest.approx({2: 2 / 3, 3: 0.5, 4: 1.0})
    assert mean_std([0.5, None, 0.7]) == pytest.approx((0.6, 0.1414213))
    assert mean_std([None]) is None


def test_rule_worlds_need_a_query() -> None:
    from kgreason.rules import example_worlds

    story = Example(
        text="x",
        facts=[("Ann", "mother", "Bea")],
        metadata={"query": ["Ann", "Bea"], "genders": {"Ann": "female", "Bea": "female"}},
    )
    ((atoms, query),) = example_worlds([story])
    assert query == ("Ann", "Bea") and all(predicate in {"male", "female"} for predicate, _ in atoms)
    ((atoms, _),) = example_worlds([story], facts=True)
    assert ("mother", ("Ann", "Bea")) in atoms
    with pytest.raises(ValueError, match="query"):
        example_worlds([Example(text="x", uid="s1")])


def test_rule_predictor_breaks_ties_with_what_training_answered() -> None:
    from kgreason.bench.predictors import RulePredictor
    from kgreason.rules import kinship_rules

    genders = {"Ann": "female", "Bob": "male", "Cid": "male", "Dee": "female"}

    def story(label: str) -> Example:  # Bob's wife's son's grandmother: Bob's mother or mother-in-law
        return Example(
            text="x",
            label=label,
            facts=[("Bob", "wife", "Ann"), ("Ann", "son", "Cid"), ("Cid", "grandmother", "Dee")],
            metadata={"query": ["Bob", "Dee"], "genders": genders},
        )

    labels = ["aunt", "mother", "mother-in-law", "son"]
    predictor = RulePredictor(rules=kinship_rules(), labels=labels)
    logits = predictor.logits([story("mother")])
    assert predictor.last_counts == {"unique": 0, "ambiguous": 1, "none": 0}
    assert logits[0, 0] < -1e3 and logits[0, 1] == logits[0, 2] == 0.0  # both candidates, nothing else
    predictor.fit([story("mother-in-law"), story("mother-in-law"), story("mother")])
    assert predictor([story("mother")]) == ["mother-in-law"]
    nothing = Example(text="x", label="son", facts=[], metadata={"query": ["Bob", "Dee"], "genders": genders})
    assert torch.equal(predictor.logits([nothing]), torch.zeros(1, 4))


def test_rule_predictor_backs_off_from_the_path_to_its_families_to_the_candidates() -> None:
    """A tie on a path training never showed (wife, son, grandmother) is broken by stories of the same
    relation families (husband, daughter, grandmother), not by the candidates' overall majority."""
    from kgreason.bench.predictors import RulePredictor
    from kgreason.rules import kinship_rules
    from kgreason.rules.kinship import KINSHIP_GENDER

    def story(path: list[str], label: str) -> Example:
        people = [f"P{i}" for i in range(len(path) + 1)]
        genders = {"P0": "female" if path[0] == "husband" else "male"}
        genders.update({people[i + 1]: KINSHIP_GENDER[r] for i, r in enumerate(path)})
        facts = [(people[i], r, people[i + 1]) for i, r in enumerate(path)]
        return Example(
            text="x",
            label=label,
            facts=facts,
            metadata={"query": [people[0], people[-1]], "genders": genders},
        )

    labels = ["mother", "mother-in-law"]
    training = [story(["wife", "daughter", "brother", "grandmother"], "mother-in-law")] * 5 + [
        story(["husband", "daughter", "grandmother"], "mother")
    ] * 2
    predictor = RulePredictor(rules=kinship_rules(), labels=labels).fit(training)
    assert predictor([story(["wife", "son", "grandmother"], "?")]) == ["mother"]
    assert predictor([story(["wife", "son", "brother", "grandmother"], "?")]) == ["mother-in-law"]
    # without the families' evidence the candidates' majority decides
    predictor = RulePredictor(rules=kinship_rules(), labels=labels).fit(training[:5])
    assert predictor([story(["wife", "son", "grandmother"], "?")]) == ["mother-in-law"]
    assert predictor.last_counts["ambiguous"] == 1


def test_stated_predictor_answers_what_the_text_says() -> None:
    """Where a sentence states a fact inversely, the rules over the text-stated facts answer the text's
    question, not the gold graph's; the report splits accuracy by whether a story's text agrees."""
    from kgreason.bench.predictors import RulePredictor, StatedPredictor
    from kgreason.bench.reasoning import ReasoningReport, VariantRun, accuracy_by
    from kgreason.bench.report import faithful_table, noise_table, report_markdown
    from kgreason.rules import kinship_rules

    sentences = ["Bob took his son Ann out.", "Bob and his son Cid went fishing."]  # Ann is Bob's son
    story = Example(
        text=" ".join(sentences),
        label="grandson",
        facts=[("Ann", "son", "Bob"), ("Bob", "son", "Cid")],  # gold: Bob is Ann's son, Cid is Bob's son
        metadata={
            "query": ["Ann", "Cid"],
            "genders": {"Ann": "male", "Bob": "male", "Cid": "male"},
            "sentences": sentences,
            "fact_sentences": [0, 1],
        },
    )
    labels = ["brother", "grandson", "son"]
    assert RulePredictor(rules=kinship_rules(), labels=labels)([story]) == ["grandson"]
    assert StatedPredictor(rules=kinship_rules(), labels=labels)([story]) == ["brother"]

    def run(variant: str, faithful: float) -> VariantRun:
        return VariantRun(variant=variant, constrained=False, seed=13, depth_accuracy={2: 0.5}, accuracy=0.5,
                          iid_accuracy=0.5, ood_accuracy=None, train_accuracy=None, violation_rate=0.0,
                          train_seconds=0.0, num_test=4,
                          extra={"faithful_accuracy": {"2": faithful}, "contradicted_accuracy": {"2": 0.0},
                                 "noise_accuracy": {"clean": faithful, "supporting": 0.5}})  # fmt: skip

    report = ReasoningReport(
        suite=load_suite("quick"), runs=[run("rules", 1.0), run("text_stated", 0.75)], seconds=1.0, depths=[2],
        info={"contradicted_stories": {"2": [1, 4]}},
    )  # fmt: skip
    table = faithful_table(report)
    assert "| rules | gold_graph | text agrees | 100.0 |" in table
    assert "| text_stated | stated_graph | text contradicts | 0.0 |" in table
    assert "k=2: 1 of 4" in report_markdown(report, command="pytest")
    assert "| rules | gold_graph | 100.0 | 50.0 | 75.0 |" in noise_table(report)  # mean over the noise kinds
    stories = [Example(text="x", label=y, metadata={"noise": n}) for y, n in (("a", "clean"), ("b", "clean"))]
    assert accuracy_by(["a", "a"], stories, key=lambda e: e.metadata["noise"]) == {"clean": 0.5}


def test_tiny_suite_end_to_end(tmp_path: Path, tiny_encoder: Path) -> None:
    """Generator -> every variant trained (tiny random BERT) -> probes -> table, JSON, Markdown, plot."""
    from kgreason.bench.reasoning import ReasoningSuiteRunner
    from kgreason.bench.report import markdown_table, write_report

    suite = load_suite(
        "quick",
        overrides=[
            f"encoder={tiny_encoder}",
            "dataset.options.train_size=48",
            "dataset.options.dev_size=16",
            "dataset.options.test_per_depth=4",
            "dataset.options.test_depths=[2,3,4]",
            "trainer.epochs=1",
            "trainer.progress=false",
            "trainer.batch_size=16",
            "variant_trainer.graph.epochs=2",
            "max_length=96",
            "probes.examples=12",
            "probes.perturbation_fractions=[1.0]",
            "probes.inlp_iterations=2",
            "probes.bootstrap_resamples=200",
            "soft_constraints=[text]",
            "reader.epochs=1",
        ],
    )
    runner = ReasoningSuiteRunner(suite=suite, output_dir=tmp_path / "results", run_root=tmp_path / "runs")
    report = runner.run()
    labels = {run.label for run in report.runs}
    assert labels == {
        "rules",
        "text",
        "text + rules",
        "graph",
        "graph + rules",
        "composer",
        "fused",
        "fused + rules",
        "fused_composer",
        "neuro_symbolic",
        "text + soft rules",
        "text + soft rules + rules",
        "reader",
        "reader_learned",
    }
    rules = next(run for run in report.runs if run.variant == "rules")
    assert all(value == 1.0 for value in rules.depth_accuracy.values())  # generated stories are solvable
    for run in report.runs:
        if run.constrained:
            assert run.violation_rate == 0.0
        assert set(run.depth_accuracy) == {2, 3, 4}
    soft = next(run for run in report.runs if run.label == "text + soft rules")
    assert (tmp_path / "runs" / "quick" / "text-soft" / "seed13" / "best").is_dir() and soft.soft
    text = next(run for run in report.runs if run.label == "text")
    assert {"ablation", "counterfactual", "rename", "representation"} <= set(text.probes)
    graph = next(run for run in report.runs if run.label == "graph")
    assert "perturbation" in graph.probes and "perturbation" not in text.probes
    reader = next(run for run in report.runs if run.label == "reader")
    assert {"ablation", "counterfactual", "rename"} <= set(
        reader.probes
    ) and "perturbation" not in reader.probes
    assert set(reader.extra["reader_quality"]) == {"2", "3", "4"}
    late = next(run for run in report.runs if run.label == "fused_composer")
    assert {"ablation", "counterfactual", "perturbation"} <= set(late.probes)
    assert (tmp_path / "runs" / "quick" / "reader" / "seed13" / "best" / "reader.json").is_file()
    files = write_report(report, tmp_path / "results", command="pytest")
    assert [f.suffix for f in files] == [".md", ".json", ".png"]
    payload = json.loads(files[1].read_text(encoding="utf-8"))
    assert {row["variant"] for row in payload["rows"]} == labels
    given = {row["variant"]: (row["inputs"], row["rules"]) for row in payload["rows"]}
    assert given["reader"] == ("text", "hand-written") and given["reader_learned"] == ("text", "learned")
    assert given["graph"] == ("gold_graph", "none") and given["neuro_symbolic"] == (
        "text+gold_pairs",
        "hand-written",
    )
    assert "| reader | relation accuracy |" in files[0].read_text(encoding="utf-8")
    assert files[2].read_bytes()[:4] == b"\x89PNG"
    assert "| rules |" in markdown_table(report)
    # a second run reuses the finished training runs (no retraining) and agrees, also from a reader record
    # written before the training settings gained their defaults (warmup_ratio ...); the folder names the seed
    record = tmp_path / "runs" / "quick" / "reader" / "seed13" / "training.json"
    written = json.loads(record.read_text(encoding="utf-8"))
    assert "seed" not in written["settings"]
    for key in ("warmup_ratio", "weight_decay", "precision"):
        del written["settings"][key]
    record.write_text(json.dumps(written), encoding="utf-8")
    weights = tmp_path / "runs" / "quick" / "reader" / "seed13" / "best" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = ReasoningSuiteRunner(
        suite=suite, output_dir=tmp_path / "results", run_root=tmp_path / "runs"
    ).run()
    assert [r.depth_accuracy for r in again.runs] == [r.depth_accuracy for r in report.runs]
    assert weights.stat().st_mtime_ns == stamp


def test_subsample_is_a_seeded_random_subset_in_order() -> None:
    from kgreason.data.splits import subsample

    items = list(range(100))
    picked = subsample(items, 10)
    assert len(picked) == 10 and picked == sorted(picked) and picked != items[:10]
    assert subsample(items, 10) == picked and subsample(items, 10, seed=1) != picked
    assert subsample(items, 0) == items and subsample(items, 500) == items


def test_story_relations_reads_each_fact_from_its_sentence_and_augments() -> None:
    from kgreason.data.readers import read_dataset
    from kgreason.data.story_relations import fact_examples, mention_span

    options = {"train_size": 12, "dev_size": 4, "test_per_depth": 2, "test_depths": [2, 3], "seed": 3}
    stories = read_dataset("kinship", **options)
    story = stories.train[0]
    items = fact_examples(story)
    assert len(items) == len(story.facts)
    for item, (head, relation, tail) in zip(items, story.facts, strict=True):
        assert item is not None and item.label == relation
        (hs, he), (ts, te) = item.spans
        assert item.text[hs:he] == head and item.text[ts:te] == tail
        assert item.text in story.metadata["sentences"]
    assert mention_span("Ann met Annabel.", "Ann") == (0, 3) and mention_span("Annabel.", "Ann") is None
    plain = read_dataset("story_relations", source="kinship", source_options=options)
    more = read_dataset(
        "story_relations",
        source="kinship",
        source_options=options,
        augment="kinship",
        augment_options={**options, "seed": 4},
    )
    assert len(more.train) > len(plain.train) and len(more.dev) == len(plain.dev)
    from kgreason.data.clutrr import CLUTRR_EDGE_TYPES

    assert plain.labels == list(CLUTRR_EDGE_TYPES)  # the fixed 14 story relations, seen or not


def test_late_fusion_takes_the_text_weight_dev_supports_and_matches_labels_by_name() -> None:
    from kgreason.bench.predictors import LateFusionPredictor, Predictor

    class Fixed(Predictor):
        def __init__(self, labels, table) -> None:
            self.labels, self.table = labels, table

        def logits(self, examples):
            return torch.tensor([self.table[e.text] for e in examples]).log()

    graph = Fixed(["son", "aunt"], {"a": [0.55, 0.45], "b": [0.9, 0.1], "c": [0.45, 0.55]})
    # the text model lists its labels in another order: aunt first
    helpful = Fixed(["aunt", "son"], {"a": [0.9, 0.1], "b": [0.4, 0.6], "c": [0.1, 0.9]})
    dev = [
        Example(text="a", label="aunt"),
        Example(text="b", label="son"),
        Example(text="c", label="son"),
    ] * 10
    few = LateFusionPredictor(graph=graph, text=helpful).fit(dev[:3])
    assert few.weight == 0.0 and few.fitted["dev_accuracy"]["0.1"] == 1.0  # 3 stories: could be chance
    fused = LateFusionPredictor(graph=graph, text=helpful).fit(dev)
    # the smallest weight that reaches the best dev accuracy (0.05 does not flip "a"; 0.1 does)
    assert fused.fitted["dev_accuracy"]["0.0"] == pytest.approx(1 / 3, abs=1e-6) and fused.weight == 0.1
    assert fused(dev[:3]) == ["aunt", "son", "son"] and fused.fitted["weight"] == 0.1
    misleading = Fixed(["aunt", "son"], {"a": [0.1, 0.9], "b": [0.9, 0.1], "c": [0.9, 0.1]})
    alone = LateFusionPredictor(graph=graph, text=misleading).fit(dev[1:3] * 10)
    assert alone.weight == 0.0 and alone(dev) == graph(dev)  # the text hurts on dev: the graph alone
