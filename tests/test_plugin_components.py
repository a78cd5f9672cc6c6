"""Every kind of component is a plug-in plus a config line: a GNN layer, a probe, a reasoning variant, a dataset
reader and a KB source, each from an installed distribution's entry point (a real dist-info in ``tmp_path``),
named in a config or suite and used without touching kgreason; an unknown name is one error with a did-you-mean.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from test_plugins import PLUGIN_MODULE  # its DemoKB is the KB source plug-in

from kgreason.bench.variants import reasoning_variants
from kgreason.core.errors import ConfigError, RegistryError
from kgreason.data.readers import readers
from kgreason.kb.sources import knowledge_bases
from kgreason.models.gnn import gnn_layers
from kgreason.probes.registry import probes

PLUGIN = "acme_kgr_plugin"

MODULE = (
    PLUGIN_MODULE
    + """
import torch
from torch_geometric.nn import GCNConv

from kgreason.bench.predictors import Predictor
from kgreason.bench.variants import ReasoningVariant
from kgreason.data.kinship import read_kinship
from kgreason.data.splits import DatasetSplits
from kgreason.models.gnn import GNNLayerSpec
from kgreason.probes.registry import Probe


def build_gcn(*, hidden, num_edge_types, config):
    return GNNLayerSpec(convs=[GCNConv(hidden, hidden) for _ in range(config.layers)], edge_input="none")


def read_small_kinship(*, data_dir=None, size=24):
    splits = read_kinship(train_size=size, dev_size=8, test_per_depth=4, test_depths=(2, 3, 4))
    return DatasetSplits(
        name="acme.SmallKinship.v1", train=splits.train, dev=splits.dev, test=splits.test, labels=splits.labels
    )


class MajorityPredictor(Predictor):
    name = "majority"

    def __init__(self, *, labels, answer):
        self.labels = list(labels)
        self.answer = answer

    def logits(self, examples):
        out = torch.zeros(len(examples), len(self.labels))  # (N, L)
        out[:, self.labels.index(self.answer)] = 1.0
        return out


def train_majority(runner, *, seed, soft):
    answers = [e.label for e in runner.train_stories]
    return MajorityPredictor(labels=runner.labels, answer=max(set(answers), key=answers.count)), 0.0


MAJORITY = ReasoningVariant(train=train_majority, description="the most frequent training answer")


def label_share(context):
    return {"share": sum(p == context.labels[0] for p in context.reference) / len(context.reference)}


LABEL_SHARE = Probe(run=label_share, needs=frozenset({"graph"}), description="share of the first label")

"""
)

ENTRY_POINTS = {
    "kgreason.gnn_layers": {"acme.GCN.v1": f"{PLUGIN}:build_gcn"},
    "kgreason.dataset_readers": {"acme.SmallKinship.v1": f"{PLUGIN}:read_small_kinship"},
    "kgreason.reasoning_variants": {"acme.Majority.v1": f"{PLUGIN}:MAJORITY"},
    "kgreason.probes": {"acme.LabelShare.v1": f"{PLUGIN}:LABEL_SHARE"},
    "kgreason.knowledge_bases": {"acme.Chain.v1": f"{PLUGIN}:DemoKB"},
}
REGISTRIES = (gnn_layers, readers, reasoning_variants, probes, knowledge_bases)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The distribution on sys.path; each registry rescans its entry points, and forgets them afterwards."""
    (tmp_path / f"{PLUGIN}.py").write_text(MODULE, encoding="utf-8")
    info = tmp_path / f"{PLUGIN}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in names.items())
            for group, names in ENTRY_POINTS.items()
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, PLUGIN, raising=False)
    for registry in REGISTRIES:
        assert registry.entry_point_group in ENTRY_POINTS
        monkeypatch.setattr(registry, "_entry_points_loaded", False)
    yield tmp_path
    for registry in REGISTRIES:
        for name in ENTRY_POINTS[registry.entry_point_group]:
            registry.unregister(name)
    sys.modules.pop(PLUGIN, None)


def test_every_plugin_is_listed_once_its_registry_is_asked(plugin: Path) -> None:
    assert PLUGIN not in sys.modules  # installing is not importing: the first lookup loads the group
    for registry in REGISTRIES:
        (name,) = ENTRY_POINTS[registry.entry_point_group]
        assert name in registry.names(), registry.kind


def test_a_gnn_layer_plugin_is_one_config_line(plugin: Path) -> None:
    from kgreason.core.config import build_config
    from kgreason.models.config import ModelConfig
    from kgreason.models.gnn import RelationalGNN

    config = build_config(ModelConfig, {"gnn": {"type": "acme.GCN.v1", "layers": 2, "hidden": 8}})
    torch.manual_seed(0)
    gnn = RelationalGNN(config=config.gnn, num_edge_types=3)
    x = torch.randn(5, 8)  # (N, H)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # (2, E)
    out = gnn(x, edge_index, torch.tensor([0, 1, 2, 0]))  # (N, H)
    assert out.shape == (5, 8)
    assert [type(conv).__name__ for conv in gnn.convs] == ["GCNConv", "GCNConv"]
    with pytest.raises(ValueError, match=r"gnn.type.*Did you mean 'acme.GCN.v1'"):
        RelationalGNN(
            config=build_config(ModelConfig, {"gnn": {"type": "acme.GCN.v2"}}).gnn, num_edge_types=3
        )


def test_a_reader_plugin_is_one_config_line(plugin: Path, tmp_path: Path) -> None:
    from kgreason.core.config import load_config
    from kgreason.data.readers import read_dataset
    from kgreason.runs.config import ExperimentConfig

    path = tmp_path / "experiment.yaml"
    path.write_text("data:\n  dataset: acme.SmallKinship.v1\n  options: {size: 12}\n", encoding="utf-8")
    config = load_config(ExperimentConfig, path, [])
    splits = read_dataset(config.data.dataset, **config.data.options)
    assert len(splits.train) == 12 and splits.name == "acme.SmallKinship.v1"
    with pytest.raises(RegistryError, match="Did you mean 'acme.SmallKinship.v1'"):
        read_dataset("acme.SmallKinship.v2")


def test_a_kb_plugin_is_one_format_name(plugin: Path, tmp_path: Path) -> None:
    from kgreason.kb.sources import open_kb

    kb = open_kb(tmp_path / "anything.dat", format="acme.Chain.v1", size=3)
    assert kb.triples().tolist() == [[0, 0, 1], [1, 0, 2]]
    with pytest.raises(RegistryError, match="Did you mean 'acme.Chain.v1'"):
        open_kb(tmp_path / "anything.dat", format="acme.Chian.v1")


def test_variant_and_probe_plugins_run_in_a_suite(plugin: Path, tmp_path: Path) -> None:
    """A suite names the plug-in reader, variant and probe; the probe runs where the variant reads what it needs."""
    from kgreason.bench.reasoning import ReasoningSuiteRunner
    from kgreason.bench.suite import load_suite
    from kgreason.data.readers import read_dataset

    suite_file = tmp_path / "mine.yaml"
    suite_file.write_text(
        "name: mine\n"
        "dataset: {reader: acme.SmallKinship.v1, options: {size: 24}}\n"
        "train_depths: [2, 3]\n"
        "variants: [kgreason.RulesVariant.v1, acme.Majority.v1]\n"
        "constraints: false\n"
        "soft_constraints: []\n"
        "seeds: [3]\n"
        "probes: {run: [kgreason.NameInvariance.v1, acme.LabelShare.v1], examples: 6}\n",
        encoding="utf-8",
    )
    suite = load_suite(suite_file)
    assert suite.variants == [
        "rules",
        "acme.Majority.v1",
    ]  # versioned built-in names resolve to the short ones
    report = ReasoningSuiteRunner(suite=suite, output_dir=tmp_path / "out", run_root=tmp_path / "runs").run()
    by_variant = {run.variant: run for run in report.runs}
    assert set(by_variant) == {"rules", "acme.Majority.v1"}
    assert all(value == 1.0 for value in by_variant["rules"].depth_accuracy.values())
    majority = by_variant["acme.Majority.v1"]
    splits = read_dataset("acme.SmallKinship.v1", size=24)
    answers = [e.label for e in splits.train]
    answer = max(set(answers), key=answers.count)
    assert majority.num_test == len(splits.test) == 12
    assert majority.accuracy == pytest.approx(sum(e.label == answer for e in splits.test) / 12)
    assert majority.probes["rename"]["estimate"] == 1.0  # a constant answer ignores every name
    # the plug-in probe needs the graph: the rule variant reads it, the majority variant does not
    assert "acme.LabelShare.v1" in by_variant["rules"].probes
    assert "acme.LabelShare.v1" not in majority.probes
    for override, message in (
        ("variants=[acme.Majorty.v1]", "Did you mean 'acme.Majority.v1'"),
        ("probes.run=[acme.LabelShar.v1]", "Did you mean 'acme.LabelShare.v1'"),
        ("soft_constraints=[acme.Majority.v1]", "is not one of fused, graph, text"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_suite(suite_file, overrides=[override])


def test_the_knowledge_readme_examples_run_as_written(tmp_path: Path) -> None:
    """knowledge/README.md "Adding a component": each snippet registers what it says, and it works."""
    import re

    from kgreason.core.config import build_config
    from kgreason.data.readers import read_dataset
    from kgreason.models.config import ModelConfig
    from kgreason.models.gnn import RelationalGNN

    readme = Path(__file__).resolve().parents[1] / "knowledge" / "README.md"
    section = readme.read_text(encoding="utf-8").split("## Adding a component", 1)[1]
    blocks = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 3
    added = {
        readers: "my_pkg.SmallKinship.v1",
        gnn_layers: "my_pkg.GCN.v1",
        reasoning_variants: "my_pkg.Majority.v1",
        probes: "my_pkg.SampleAccuracy.v1",
    }
    try:
        namespace: dict[str, object] = {"__name__": "knowledge_readme"}
        for block in blocks:
            exec(compile(block, str(readme), "exec"), namespace)
        assert len(read_dataset("my_pkg.SmallKinship.v1", size=10).train) == 10
        gnn = RelationalGNN(
            config=build_config(ModelConfig, {"gnn": {"type": "my_pkg.GCN.v1", "hidden": 8}}).gnn,
            num_edge_types=2,
        )
        assert gnn(torch.randn(3, 8), torch.tensor([[0, 1], [1, 2]]), torch.tensor([0, 1])).shape == (3, 8)
        from kgreason.bench.reasoning import ReasoningSuiteRunner
        from kgreason.bench.suite import load_suite

        suite = tmp_path / "readme.yaml"
        suite.write_text(
            "name: readme\ndataset: {reader: my_pkg.SmallKinship.v1}\nvariants: [rules, my_pkg.Majority.v1]\n"
            "constraints: false\nsoft_constraints: []\nseeds: [1]\n"
            "probes: {run: [ablation, my_pkg.SampleAccuracy.v1], examples: 6}\n",
            encoding="utf-8",
        )
        report = ReasoningSuiteRunner(
            suite=load_suite(suite), output_dir=tmp_path / "out", run_root=tmp_path / "runs"
        ).run()
        rules, majority = report.runs
        assert rules.probes["my_pkg.SampleAccuracy.v1"] == {"accuracy": 1.0}  # generated stories are solvable
        assert majority.probes["my_pkg.SampleAccuracy.v1"]["accuracy"] < 1.0
    finally:
        for registry, name in added.items():
            registry.unregister(name)
