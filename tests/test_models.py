"""KGReasonModel: every variant × head, the graph side's outputs, save/load, PEFT and encoder checks."""

from __future__ import annotations

import json
import pickle
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from kgreason.core.batch import IGNORE_INDEX, Batch, Collator, EncodedExample
from kgreason.core.errors import ModelNotAvailableError
from kgreason.models.config import HEADS, VARIANTS, GNNConfig, ModelConfig
from kgreason.models.encoder import EncoderMismatchError, load_encoder_for_training
from kgreason.models.fused import KGReasonModel
from kgreason.models.knowledge import EntityFeatures, build_entity_features, read_kge_vectors
from kgreason.models.peft import PeftConfig, apply_peft

NUM_ENTITIES, NUM_RELATIONS = 12, 3


@lru_cache(maxsize=1)
def tokenizer():
    from transformers import AutoTokenizer

    from kgreason.encoders.resolve import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path())


def tiny_bert(*, vocab_size: int | None = None, seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size or tokenizer().vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return BertModel(config, add_pooling_layer=False)


def random_graph(nodes: int, edges: int, *, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    return Data(
        edge_index=torch.randint(0, max(nodes, 1), (2, edges), generator=g),  # (2, e)
        edge_type=torch.randint(0, NUM_RELATIONS, (edges,), generator=g),  # (e,)
        n_id=torch.randperm(NUM_ENTITIES, generator=g)[:nodes],  # (n,)
        seed_mask=torch.arange(nodes) < 2,  # (n,)
        num_nodes=nodes,
    )


TEXTS = ["Ada lives in Lyon .", "Bruno is a carpenter", "Where does Claire work today ?"]


def make_batch(head: str, *, graphs: list[Data] | None = None) -> Batch:
    """Three examples with 4-6-node graphs (or ``graphs``) for ``head``."""
    tok = tokenizer()
    graphs = graphs or [random_graph(4, 6, seed=1), random_graph(6, 9, seed=2), random_graph(5, 7, seed=3)]
    items = []
    for i, text in enumerate(TEXTS):
        if head == "choice":
            choices = ["yes", "no", "maybe"][: 3 if i == 0 else 2]  # a ragged number of choices
            ids = [tok(text, choice)["input_ids"] for choice in choices]
            items.append(EncodedExample(input_ids=ids, labels=i % 2, graph=graphs[i], index=i))
            continue
        ids = tok(text)["input_ids"]
        labels: int | list[int] = i % 2
        if head == "token":
            labels = [IGNORE_INDEX] + [j % 3 for j in range(len(ids) - 2)] + [IGNORE_INDEX]
        markers = (1, 2) if head == "relation" else None
        items.append(
            EncodedExample(input_ids=ids, labels=labels, marker_positions=markers, graph=graphs[i], index=i)
        )
    return Collator(pad_token_id=tok.pad_token_id)(items)


def make_model(
    *, variant: str = "fused", head: str = "sequence", gnn: str = "rgcn", features: str = "learned", **kwargs
):
    num_labels = 1 if head == "choice" else 3
    config = ModelConfig(
        variant=variant,
        head=head,
        num_labels=num_labels,
        num_entities=NUM_ENTITIES,
        num_relations=NUM_RELATIONS,
        node_features=features,
        gnn=GNNConfig(type=gnn, layers=2, hidden=16, heads=2, dropout=0.1),
        **kwargs,
    )
    encoder = None if variant == "graph" else tiny_bert()
    torch.manual_seed(1)
    return KGReasonModel(config, encoder=encoder, tokenizer=tokenizer())


# ---------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head", HEADS)
def test_every_variant_and_head_runs_forward_and_backward(variant, head):
    model = make_model(variant=variant, head=head)
    batch = make_batch(head)
    out = model(batch)
    b, t = batch.input_ids.shape[0], batch.input_ids.shape[-1]
    expected = {"sequence": (b, 3), "relation": (b, 3), "token": (b, t, 3), "choice": (b, 3)}[head]
    assert out.logits.shape == expected
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.head.parameters())
    if variant == "text":
        assert model.reasoner is None and out.graph_attention is None and out.node_relevance is None
    else:
        assert model.reasoner.gnn.convs[0].weight.grad is not None
        nodes = int(batch.graph.num_nodes)
        shape = (nodes, 3) if head == "choice" else (nodes,)
        assert out.graph_attention.shape == shape
        assert (out.node_relevance is None) == (variant == "graph")
    if variant == "graph":
        assert model.encoder is None
    else:
        assert model.encoder.embeddings.word_embeddings.weight.grad is not None
    if head == "choice":
        assert out.logits[1, 2] == torch.finfo(out.logits.dtype).min  # the padded third choice never wins
        assert out.pooled.shape[:2] == (b, 3)


@pytest.mark.parametrize("gnn", ["rgcn", "gatv2", "bellman_ford"])
def test_fused_runs_under_bf16_autocast(gnn):
    model = make_model(gnn=gnn, head="choice")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(make_batch("choice"))
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    out.loss.backward()
    conv = model.reasoner.gnn.convs[0]
    weight = {"gatv2": lambda: conv.lin_l.weight, "bellman_ford": lambda: conv.update_linear.weight}.get(
        gnn, lambda: conv.weight
    )()
    assert torch.isfinite(weight.grad).all()


def test_text_variant_ignores_graphs():
    model = make_model(variant="text").eval()
    batch = make_batch("sequence")
    with torch.no_grad():
        with_graph = model(batch).logits
        without = model(Batch(input_ids=batch.input_ids, attention_mask=batch.attention_mask)).logits
    torch.testing.assert_close(with_graph, without)


def test_graph_variant_never_calls_an_encoder_and_ignores_the_text():
    model = make_model(variant="graph").eval()
    assert model.encoder is None and not any("encoder." in n for n, _ in model.named_parameters())
    batch = make_batch("sequence")
    with torch.no_grad():
        a = model(batch).logits
        batch.input_ids = torch.randint(1000, 2000, batch.input_ids.shape)
        b = model(batch).logits
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="needs batch.graph"):
        model(Batch(input_ids=batch.input_ids, attention_mask=batch.attention_mask))


@pytest.mark.parametrize("gnn", ["rgcn", "gatv2"])
def test_relevance_and_attention(gnn):
    model = make_model(gnn=gnn).eval()
    graphs = [random_graph(4, 6, seed=1), random_graph(0, 0, seed=2), random_graph(6, 9, seed=3)]
    batch = make_batch("sequence", graphs=graphs)  # the middle example links nothing: only its context node
    with torch.no_grad():
        out = model(batch)
    assert torch.isfinite(out.logits).all()
    assert out.node_relevance.shape == (10,) and ((out.node_relevance > 0) & (out.node_relevance < 1)).all()
    sums = torch.zeros(3).index_add(0, batch.graph.batch, out.graph_attention)
    torch.testing.assert_close(sums, torch.tensor([1.0, 0.0, 1.0]))
    # an all-empty batch runs too
    empty = make_batch("sequence", graphs=[random_graph(0, 0, seed=i) for i in range(3)])
    with torch.no_grad():
        out = model(empty)
    assert out.graph_attention.shape == (0,) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("gnn", ["rgcn", "gatv2"])
def test_changing_one_edge_type_changes_the_prediction(gnn):
    model = make_model(gnn=gnn).eval()
    batch = make_batch("sequence")
    with torch.no_grad():
        before = model(batch).logits
        batch.graph.edge_type[0] = (
            batch.graph.edge_type[0] + 1
        ) % NUM_RELATIONS  # first example's first edge
        after = model(batch).logits
    assert not torch.allclose(before[0], after[0], atol=1e-6)
    torch.testing.assert_close(before[1:], after[1:])  # other examples' graphs are untouched


def test_config_and_input_errors():
    with pytest.raises(ValueError, match="num_labels must be 1"):
        KGReasonModel(ModelConfig(variant="graph", head="choice", num_labels=2, node_features="learned"))
    with pytest.raises(ValueError, match="variant must be one of"):
        KGReasonModel(ModelConfig(variant="bert"))
    with pytest.raises(ValueError, match="build_entity_features"):
        KGReasonModel(ModelConfig(variant="graph", node_features="kge", num_entities=4))
    model = make_model(variant="graph")
    batch = make_batch("sequence")
    batch.graph.edge_type[0] = NUM_RELATIONS
    with pytest.raises(ValueError, match="edge_type values must lie in"):
        model(batch)
    batch = make_batch("sequence")
    batch.graph.n_id[0] = NUM_ENTITIES
    with pytest.raises(IndexError, match="out of range"):
        model(batch)


# ---------------------------------------------------------------------------------------------- KGE features
def write_kge(folder: Path, keys: list[str], vectors: torch.Tensor) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {"entity": vectors, "relation": torch.zeros(2, vectors.size(1))},
        str(folder / "embeddings.safetensors"),
    )
    (folder / "entities.txt").write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")
    (folder / "config.json").write_text(
        json.dumps({"model": "transe", "dim": vectors.size(1)}), encoding="utf-8"
    )
    return folder


class KeysKB:
    """The two members read_kge_vectors uses, over a list of keys."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.name = "keys"

    @property
    def num_entities(self) -> int:
        return len(self.keys)

    def entity_key(self, entity: int) -> str:
        return self.keys[entity]


def test_kge_vectors_are_aligned_by_key_and_frozen_or_trained(tmp_path):
    keys = [f"<http://x/e{i}>" for i in range(NUM_ENTITIES)]
    vectors = torch.randn(NUM_ENTITIES, 6)
    order = torch.randperm(NUM_ENTITIES)
    folder = write_kge(tmp_path / "kge", [keys[i] for i in order.tolist()][:-1], vectors[order][:-1])
    table = read_kge_vectors(folder, kb=KeysKB(keys))  # (E, 6), the last shuffled entity missing
    missing = int(order[-1])
    present = [i for i in range(NUM_ENTITIES) if i != missing]
    torch.testing.assert_close(table[present], vectors[present])
    assert table[missing].abs().sum() == 0

    config = ModelConfig(
        variant="graph",
        num_entities=NUM_ENTITIES,
        num_relations=NUM_RELATIONS,
        kge_path=str(folder),
        gnn=GNNConfig(hidden=16),
    )
    features = build_entity_features(config, kb=KeysKB(keys))
    frozen = KGReasonModel(config, entity_features=features)
    assert "reasoner.entities.kge" in dict(frozen.named_buffers())
    config.freeze_kge = False
    trained = KGReasonModel(config, entity_features=features.kge)
    assert "reasoner.entities.kge" in dict(trained.named_parameters())
    out = trained(make_batch("sequence"))
    out.loss.backward()
    assert trained.reasoner.entities.kge.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="none of the"):
        read_kge_vectors(folder, kb=KeysKB(["other"]))
    with pytest.raises(FileNotFoundError, match="entities.txt"):
        read_kge_vectors(tmp_path, kb=KeysKB(keys))


# ---------------------------------------------------------------------------------------------- save / load
def assert_no_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle / torch.load must not be used to load a model")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


@pytest.mark.parametrize("variant", ["fused", "graph"])
def test_save_and_load_gives_identical_logits_from_safetensors_only(tmp_path, monkeypatch, variant):
    features = EntityFeatures(kge=torch.randn(NUM_ENTITIES, 5), names=torch.randn(NUM_ENTITIES, 4))
    config = ModelConfig(
        variant=variant,
        head="relation",
        num_labels=3,
        num_entities=NUM_ENTITIES,
        num_relations=NUM_RELATIONS,
        node_features="kge+names",
        gnn=GNNConfig(hidden=16),
    )
    model = KGReasonModel(
        config,
        encoder=None if variant == "graph" else tiny_bert(),
        tokenizer=tokenizer(),
        entity_features=features,
    ).eval()
    batch = make_batch("relation")
    with torch.no_grad():
        expected = model(batch).logits
    folder = model.save_pretrained(
        tmp_path / "model", task_config={"name": "relation", "labels": ["a", "b", "c"]}
    )
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "model.safetensors" in files and "config.json" in files and "encoder/tokenizer.json" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl", ".pth")) for f in files)
    assert not list(tmp_path.glob(".model*"))  # no temporary folder left beside it
    meta = json.loads((folder / "config.json").read_text())
    assert meta["task"]["labels"] == ["a", "b", "c"] and meta["model"]["variant"] == variant
    assert_no_pickle(monkeypatch)
    loaded = KGReasonModel.from_pretrained(folder)
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, expected)
    torch.testing.assert_close(loaded.reasoner.entities.kge, features.kge)
    assert loaded.tokenizer("Ada")["input_ids"] == tokenizer()("Ada")["input_ids"]


def test_trainer_checkpoint_helpers_accept_the_saved_folder(tmp_path):
    from kgreason.training.checkpoint import load_weights, save_model_dir

    model = make_model(variant="fused").eval()
    folder = save_model_dir(tmp_path / "best", model=model)  # through model.save_pretrained, atomically
    assert (folder / "encoder" / "config.json").is_file()
    other = make_model(variant="fused").eval()
    torch.nn.init.normal_(other.head.mlp[1].weight)
    load_weights(other, folder)  # the trainer's strict reload of best/model.safetensors
    batch = make_batch("sequence")
    with torch.no_grad():
        torch.testing.assert_close(other(batch).logits, model(batch).logits)


def test_load_errors_name_the_folder(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="config.json is missing"):
        KGReasonModel.from_pretrained(tmp_path)
    model = make_model(variant="graph")
    folder = model.save_pretrained(tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    meta["model"]["gnn"]["hidden"] = 8
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelNotAvailableError, match="does not fit"):
        KGReasonModel.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------- PEFT
def test_lora_trains_only_adapters_in_the_encoder_and_saves_merged(tmp_path, monkeypatch):
    model = make_model(variant="fused")
    apply_peft(model, PeftConfig(method="lora", r=4, alpha=8, dropout=0.0))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    encoder_trainable = {n for n in trainable if n.startswith("encoder.")}
    assert encoder_trainable and all("lora_" in n for n in encoder_trainable)
    assert all(p.requires_grad for p in model.reasoner.parameters()) and all(
        p.requires_grad for p in model.head.parameters()
    )
    base = {n: p.detach().clone() for n, p in model.encoder.named_parameters() if "lora_" not in n}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = make_batch("sequence")
    model.train()
    for _ in range(2):
        optimizer.zero_grad()
        model(batch).loss.backward()
        optimizer.step()
    for name, param in model.encoder.named_parameters():
        if "lora_" not in name:
            torch.testing.assert_close(param, base[name])
    assert any(
        p.abs().sum() > 0 for n, p in model.encoder.named_parameters() if "lora_B" in n
    )  # adapters moved

    model.eval()
    with torch.no_grad():
        expected = model(batch).logits
    folder = model.save_pretrained(tmp_path / "lora")
    assert json.loads((folder / "config.json").read_text())["peft"] == {"method": "lora", "merged": True}
    assert not (folder / "adapter").exists()
    with torch.no_grad():
        torch.testing.assert_close(model(batch).logits, expected)  # saving did not merge the live model
    assert_no_pickle(monkeypatch)
    loaded = KGReasonModel.from_pretrained(folder)
    assert type(loaded.encoder).__name__ == "BertModel"  # plain: no peft wrapper
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, expected, atol=1e-5, rtol=1e-4)


def test_prefix_tuning_saves_the_adapter_beside_the_weights(tmp_path):
    model = make_model(variant="fused", head="token")
    apply_peft(model, PeftConfig(method="prefix", num_virtual_tokens=4))
    encoder_trainable = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert encoder_trainable and all("prompt_encoder" in n for n in encoder_trainable)
    batch = make_batch("token")
    model.eval()
    with torch.no_grad():
        expected = model(batch).logits
    folder = model.save_pretrained(tmp_path / "prefix")
    assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    loaded = KGReasonModel.from_pretrained(folder)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, expected)


def test_peft_errors_and_adalora():
    with pytest.raises(ValueError, match="has none"):
        apply_peft(make_model(variant="graph"), PeftConfig(method="lora"))
    with pytest.raises(ValueError, match="target_modules"):
        apply_peft(make_model(variant="text"), PeftConfig(method="lora", target_modules=["q_proj"]))
    with pytest.raises(ValueError, match="total_steps"):
        apply_peft(make_model(variant="text"), PeftConfig(method="adalora"))
    model = apply_peft(make_model(variant="text"), PeftConfig(method="adalora", r=4), total_steps=10)
    model.train()
    batch = make_batch("sequence")
    train_loss = model(batch).loss
    model.eval()
    with torch.no_grad():
        eval_loss = model(batch).loss
    assert train_loss.item() != pytest.approx(
        eval_loss.item()
    )  # the orthogonality penalty is added in training
    train_loss.backward()


# ---------------------------------------------------------------------------------------------- encoder checks
def test_encoder_loader_checks(tmp_path):
    from transformers import GPT2Config, GPT2Model, T5Config

    with pytest.raises(ModelNotAvailableError, match="no such model folder"):
        load_encoder_for_training(str(tmp_path / "missing"))
    gpt2 = tmp_path / "gpt2"
    GPT2Model(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50)).save_pretrained(gpt2)
    with pytest.raises(EncoderMismatchError, match="decoder-only"):
        load_encoder_for_training(str(gpt2))
    t5 = tmp_path / "t5"
    t5.mkdir()
    T5Config(d_model=16, num_layers=1, num_heads=2, d_ff=8, vocab_size=50).save_pretrained(t5)
    with pytest.raises(EncoderMismatchError, match="encoder-decoder"):
        load_encoder_for_training(str(t5))
    small = tmp_path / "small-vocab"
    tiny_bert(vocab_size=100).save_pretrained(small)
    tokenizer().save_pretrained(small)
    with pytest.raises(
        EncoderMismatchError, match="30522 tokens but the model's input embeddings have 100 rows"
    ):
        load_encoder_for_training(str(small))
    fine = tmp_path / "fine"
    tiny_bert().save_pretrained(fine)
    tokenizer().save_pretrained(fine)
    parts = load_encoder_for_training(str(fine))
    assert parts.model.training and getattr(parts.model, "pooler", None) is None
    assert parts.source.kind == "local"


# ---------------------------------------------------------------------------------------------- rule loss
def test_soft_rule_loss_is_added_and_pushes_forbidden_labels_down():
    import dataclasses

    batch = make_batch("sequence")
    forbidden = torch.tensor([[False, True, True], [True, False, False], [False, False, True]])  # (B, L)
    masks = torch.stack([torch.zeros_like(forbidden), forbidden], dim=1)  # (B, 2, L)
    with_masks = dataclasses.replace(batch, label_masks=masks)
    plain = make_model(variant="text")
    ruled = make_model(variant="text", constraint_weight=2.0)
    plain.eval(), ruled.eval()
    base = plain(with_masks)
    out = ruled(with_masks)
    probs = out.logits.softmax(-1)
    expected = 2.0 * probs[forbidden].mean()  # product t-norm: a denial's truth is 1 - p
    assert torch.allclose(out.loss, base.loss + expected, atol=1e-5)
    assert torch.allclose(ruled(batch).loss, base.loss, atol=1e-6)  # no masks: cross-entropy only
    # a few steps on the rule loss alone move probability off the forbidden labels
    ruled.train()
    optimizer = torch.optim.SGD(ruled.parameters(), lr=0.5)
    unlabelled = dataclasses.replace(with_masks, labels=None)
    before = probs[forbidden].mean().item()
    for _ in range(5):
        logits = ruled(unlabelled).logits
        loss = ruled.rule_loss(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    ruled.eval()
    after = ruled(unlabelled).logits.softmax(-1)[forbidden].mean().item()
    assert after < before
    with pytest.raises(ValueError, match="label_masks"):
        ruled.rule_loss(out.logits, masks[:, :, :2])
