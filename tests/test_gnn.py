"""The relation-aware GNN: the grouped RGCN forward against PyG's RGCNConv, and the layer stack."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.nn import GCNConv, RGCNConv

from kgreason.models.config import GNNConfig
from kgreason.models.gnn import GNN_TYPES, GNNLayerSpec, GroupedRGCNConv, RelationalGNN, gnn_layers


def random_graph(*, nodes: int = 6, edges: int = 14, relations: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(nodes, 8, generator=g)  # (N, 8)
    edge_index = torch.randint(0, nodes, (2, edges), generator=g)  # (2, E)
    edge_type = torch.randint(0, relations, (edges,), generator=g)  # (E,)
    return x, edge_index, edge_type


@pytest.mark.parametrize("num_bases", [None, 2])
def test_grouped_rgcn_equals_pyg_rgcnconv_values_and_gradients(num_bases):
    torch.manual_seed(0)
    conv = GroupedRGCNConv(8, 6, 5, num_bases=num_bases)
    x, edge_index, edge_type = random_graph()
    x1 = x.clone().requires_grad_()
    x2 = x.clone().requires_grad_()
    ours = conv(x1, edge_index, edge_type)  # (N, 6)
    reference = RGCNConv.forward(conv, x2, edge_index, edge_type)  # PyG's own forward, same parameters
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * weights).sum(), [x1, conv.weight])
    g_ref = torch.autograd.grad((reference * weights).sum(), [x2, conv.weight])
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_grouped_rgcn_without_edges_keeps_root_and_bias():
    conv = GroupedRGCNConv(8, 6, 3)
    x = torch.randn(4, 8)
    out = conv(x, torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    torch.testing.assert_close(out, x @ conv.root + conv.bias)


@pytest.mark.parametrize("kind", ["rgcn", "gatv2", "bellman_ford"])
def test_stack_shapes_and_an_edge_type_changes_the_output(kind):
    torch.manual_seed(0)
    gnn = RelationalGNN(
        config=GNNConfig(type=kind, layers=2, hidden=16, heads=2, dropout=0.0), num_edge_types=4
    )
    gnn.eval()
    x = torch.randn(5, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # a path 0 -> 1 -> 2 -> 3 -> 4
    edge_type = torch.tensor([0, 1, 2, 3])
    out = gnn(x, edge_index, edge_type)  # (5, 16)
    assert out.shape == (5, 16) and torch.isfinite(out).all()
    changed = gnn(x, edge_index, torch.tensor([0, 1, 2, 0]))  # the last edge (3 -> 4) gets another type
    assert not torch.allclose(changed[4], out[4], atol=1e-4)  # its target sees a different relation
    torch.testing.assert_close(changed[:4], out[:4])  # nodes upstream of that edge do not
    out.sum().backward()
    assert all(p.grad is not None for p in gnn.convs.parameters() if p.requires_grad)


def test_stack_rejects_bad_settings_and_edge_types():
    with pytest.raises(ValueError, match="gnn.type"):
        RelationalGNN(config=GNNConfig(type="rgat"), num_edge_types=3)
    with pytest.raises(ValueError, match="multiple of gnn.heads"):
        RelationalGNN(config=GNNConfig(type="gatv2", hidden=10, heads=3), num_edge_types=3)
    gnn = RelationalGNN(config=GNNConfig(hidden=8, layers=1), num_edge_types=3)
    with pytest.raises(ValueError, match="edge type 3 is out of range"):
        gnn(torch.randn(2, 8), torch.tensor([[0], [1]]), torch.tensor([3]))


@pytest.mark.parametrize(
    ("versioned", "alias"),
    [
        ("kgreason.RGCN.v1", "rgcn"),
        ("kgreason.GATv2.v1", "gatv2"),
        ("kgreason.BellmanFord.v1", "bellman_ford"),
    ],
)
def test_versioned_name_and_alias_build_the_same_weights(versioned, alias):
    assert alias in GNN_TYPES and gnn_layers.canonical(alias) == versioned
    x, edge_index, edge_type = random_graph(nodes=7, edges=20, relations=4)  # (7, 8), (2, 20), (20,)
    built = {}
    for name in (versioned, alias, alias.upper()):
        torch.manual_seed(0)
        gnn = RelationalGNN(
            config=GNNConfig(type=name, layers=2, hidden=8, heads=2, dropout=0.0), num_edge_types=4
        )
        gnn.eval()
        built[name] = (gnn.state_dict(), gnn(x, edge_index, edge_type))
        assert gnn.layer == versioned
    reference, out = built[versioned]
    for state, other in built.values():
        assert list(state) == list(reference)
        assert all(torch.equal(state[k], reference[k]) for k in reference)
        assert torch.equal(other, out)


def test_a_plugin_layer_registered_by_name_builds_and_runs():
    def build_gcn(*, hidden: int, num_edge_types: int, config: GNNConfig) -> GNNLayerSpec:
        """Plain GCN layers: edge types are ignored."""
        return GNNLayerSpec(convs=[GCNConv(hidden, hidden) for _ in range(config.layers)], edge_input="none")

    gnn_layers.register("tests.GCN.v1", build_gcn, aliases=("tests_gcn",))
    try:
        gnn = RelationalGNN(config=GNNConfig(type="tests.GCN.v1", layers=3, hidden=12), num_edge_types=4)
        assert gnn.layer == "tests.GCN.v1" and all(isinstance(c, GCNConv) for c in gnn.convs)
        assert gnn.edge_embedding is None
        x = torch.randn(5, 12)  # (N, 12)
        edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # (2, 4)
        out = gnn(x, edge_index, torch.tensor([0, 1, 2, 3]))  # (5, 12)
        assert out.shape == (5, 12) and torch.isfinite(out).all()
        gnn.eval()
        torch.testing.assert_close(
            gnn(x, edge_index, torch.tensor([0, 1, 2, 3])),
            gnn(x, edge_index, torch.zeros(4, dtype=torch.long)),
        )
        assert isinstance(
            RelationalGNN(config=GNNConfig(type="tests_gcn", hidden=12), num_edge_types=4).convs[0], GCNConv
        )
    finally:
        gnn_layers.unregister("tests.GCN.v1")
    assert "tests.GCN.v1" not in gnn_layers and "tests_gcn" not in gnn_layers


def test_a_plugin_layer_that_builds_the_wrong_stack_is_named():
    gnn_layers.register("tests.Short.v1", lambda **_: GNNLayerSpec(convs=[GCNConv(8, 8)]))
    try:
        with pytest.raises(ValueError, match="'tests.Short.v1' built 1 convs for gnn.layers=2"):
            RelationalGNN(config=GNNConfig(type="tests.Short.v1", layers=2, hidden=8), num_edge_types=3)
    finally:
        gnn_layers.unregister("tests.Short.v1")


def test_an_unknown_layer_names_gnn_type_and_the_close_name():
    with pytest.raises(ValueError, match="gnn.type") as err:
        RelationalGNN(config=GNNConfig(type="rgcm"), num_edge_types=3)
    assert "Did you mean 'rgcn'?" in str(err.value) and "kgreason.GATv2.v1" in str(err.value)
    with pytest.raises(ValueError, match=r"gnn.type.*Did you mean 'kgreason.RGCN.v1'\?"):
        RelationalGNN(config=GNNConfig(type="kgreason.RGCN.v2"), num_edge_types=3)


@pytest.mark.parametrize("layers", [2, 3])
def test_bellman_ford_steps_carry_a_path_exactly_as_far_as_there_are_layers(layers):
    """On a path 0 -> 1 -> 2 -> 3, node 3 sees the type of the first edge only after three steps."""
    torch.manual_seed(0)
    gnn = RelationalGNN(
        config=GNNConfig(type="bellman_ford", layers=layers, hidden=16, dropout=0.0), num_edge_types=3
    ).eval()
    x = torch.randn(4, 16)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    out = gnn(x, edge_index, torch.tensor([0, 1, 2]))
    changed = gnn(x, edge_index, torch.tensor([1, 1, 2]))  # the first edge's relation changes
    assert torch.allclose(out[0], changed[0])
    assert not torch.allclose(out[2], changed[2], atol=1e-5)  # two steps away
    assert torch.allclose(out[3], changed[3], atol=1e-6) == (layers < 3)
