"""Representation probes: linear probes per encoder layer, and amnesic probing by iterative nullspace projection.

* :func:`layer_states` runs an HF encoder with ``output_hidden_states=True`` and pools every layer ([CLS] and
  masked mean);
* :func:`probe_layers` fits a logistic-regression probe per layer (train / test split of the examples) and
  reports its accuracy next to the majority baseline;
* :func:`inlp` (Ravfogel et al., ACL 2020) removes, iteration by iteration, the directions that linear probes
  use to predict a property, and :func:`amnesic_effect` (Elazar et al., TACL 2021) measures how much a given
  classifier's accuracy drops when they are removed, against a random removal of the same rank.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgreason.core.example import Example
from kgreason.probes.effects import Effect, bootstrap_ci

POOLINGS = ("cls", "mean")


# ------------------------------------------------------------------------------------------- hidden states


@dataclass
class LayerStates:
    """Pooled hidden states of every layer (index 0 = the embeddings), for each example.

    Shapes: ``cls`` and ``mean`` are ``(layers + 1, n, d)``.
    """

    cls: np.ndarray
    mean: np.ndarray

    def pooled(self, pooling: str) -> np.ndarray:
        """The states pooled by ``"cls"`` or ``"mean"``, shape ``(layers + 1, n, d)``."""
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {list(POOLINGS)}")
        return self.cls if pooling == "cls" else self.mean

    @property
    def num_layers(self) -> int:
        return int(self.cls.shape[0])


def layer_states(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    max_length: int = 256,
    batch_size: int = 16,
    progress: bool = True,
) -> LayerStates:
    """[CLS] and mean-pooled hidden states of every layer of an HF encoder for ``examples``.

    Each example is encoded as ``(text, text_pair)`` (``text_pair`` empty where missing, when any example has
    one), truncated to ``max_length`` tokens, in batches of similar length; states come back in input order.
    """
    import torch
    from tqdm.auto import tqdm

    texts = [e.text for e in examples]
    pairs = [e.text_pair or "" for e in examples] if any(e.text_pair for e in examples) else None
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + len(pairs[i] if pairs else ""))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    cls_parts: list[np.ndarray] = []
    mean_parts: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            starts = range(0, len(order), batch_size)
            for start in tqdm(starts, desc="hidden states", disable=not progress or len(starts) < 2):
                chunk = order[start : start + batch_size]
                batch = tokenizer(
                    [texts[i] for i in chunk],
                    [pairs[i] for i in chunk] if pairs else None,
                    truncation=True,
                    max_length=max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                out = model(**batch, output_hidden_states=True)
                hidden = torch.stack(out.hidden_states)  # (L + 1, B, T, d)
                mask = batch["attention_mask"].to(hidden.dtype)[None, :, :, None]  # (1, B, T, 1)
                mean = (hidden * mask).sum(2) / mask.sum(2).clamp(min=1)  # (L + 1, B, d)
                cls_parts.append(hidden[:, :, 0].float().cpu().numpy())  # (L + 1, B, d)
                mean_parts.append(mean.float().cpu().numpy())  # (L + 1, B, d)
    finally:
        model.train(was_training)
    if not order:
        layers = model.config.num_hidden_layers + 1
        empty = np.zeros((layers, 0, model.config.hidden_size), dtype=np.float32)
        return LayerStates(cls=empty, mean=empty.copy())
    inverse = np.argsort(np.array(order))  # (n,)
    cls = np.concatenate(cls_parts, axis=1)[:, inverse]  # (L + 1, n, d)
    mean = np.concatenate(mean_parts, axis=1)[:, inverse]  # (L + 1, n, d)
    return LayerStates(cls=cls, mean=mean)


# ---------------------------------------------------------------------------------------------- layer probes


@dataclass
class LayerProbeResult:
    """Linear-probe accuracy per layer (index 0 = embeddings) on held-out examples, and the majority baseline."""

    accuracies: list[Effect]
    majority_baseline: float
    pooling: str
    n_train: int
    n_test: int
    labels: list[Any] = field(default_factory=list)

    @property
    def best_layer(self) -> int:
        return int(np.argmax([a.estimate for a in self.accuracies]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracies": [a.to_dict() for a in self.accuracies],
            "majority_baseline": self.majority_baseline,
            "pooling": self.pooling,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "best_layer": self.best_layer,
            "labels": [str(label) for label in self.labels],
        }


def probe_layers(
    states: LayerStates | np.ndarray,
    labels: Sequence[Any],
    *,
    pooling: str = "cls",
    test_fraction: float = 0.3,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = 2000,
    confidence: float = 0.95,
) -> LayerProbeResult:
    """Fit one logistic-regression probe per layer on a train split and score it on the test split.

    ``states`` is a :class:`LayerStates` (pooled by ``pooling``) or an array ``(layers, n, d)``; ``labels`` the
    property to probe for each example (e.g. the query relation, ``[e.label for e in examples]``). Features are
    standardised on the train split. The split is stratified when every class has two members or more.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    array = states.pooled(pooling) if isinstance(states, LayerStates) else np.asarray(states)  # (L, n, d)
    y = np.asarray(labels)  # (n,)
    if array.ndim != 3 or array.shape[1] != len(y):
        raise ValueError(f"states must be (layers, n, d) with n = {len(y)} labels, got shape {array.shape}")
    train, test = _split(y, test_fraction=test_fraction, seed=seed)
    majority_label = Counter(y[train].tolist()).most_common(1)[0][0]
    majority = float(np.mean(y[test] == majority_label))
    accuracies = []
    for layer in range(array.shape[0]):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(converge|ConvergenceWarning).*")
            probe.fit(array[layer, train], y[train])
        correct = (probe.predict(array[layer, test]) == y[test]).astype(np.float64)  # (n_test,)
        accuracies.append(
            bootstrap_ci(correct, confidence=confidence, seed=seed).effect(f"probe_accuracy[layer={layer}]")
        )
    return LayerProbeResult(
        accuracies=accuracies,
        majority_baseline=majority,
        pooling=pooling,
        n_train=len(train),
        n_test=len(test),
        labels=sorted(set(y.tolist()), key=str),
    )


def _split(y: np.ndarray, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if len(y) < 4:
        raise ValueError(f"need at least 4 examples to split into train and test, got {len(y)}")
    counts = Counter(y.tolist())
    n_test = max(1, round(test_fraction * len(y)))
    stratify = y if min(counts.values()) >= 2 and len(counts) <= n_test <= len(y) - len(counts) else None
    train, test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=stratify, random_state=seed)
    if len(set(y[train].tolist())) < 2:
        raise ValueError("the train split holds a single class; a probe needs at least two")
    return np.sort(train), np.sort(test)


# ----------------------------------------------------------------------------------------------------- INLP


@dataclass
class InlpResult:
    """Iterative nullspace projection.

    Attributes:
        projection: ``(d, d)`` orthogonal projection onto the complement of the removed directions (apply as
            ``X @ projection``).
        directions: ``(k, d)`` orthonormal basis of the removed subspace (``k`` = its rank).
        accuracies: held-out probe accuracy before each iteration and after the last (``iterations + 1``).
        majority_baseline: the held-out accuracy of predicting the most frequent train label (chance).
    """

    projection: np.ndarray
    directions: np.ndarray
    accuracies: list[float]
    majority_baseline: float

    @property
    def rank(self) -> int:
        return int(self.directions.shape[0])


def inlp(
    X: np.ndarray,
    y: Sequence[Any],
    *,
    iterations: int = 10,
    seed: int = 0,
    test_fraction: float = 0.3,
    C: float = 1.0,
    max_iter: int = 2000,
) -> InlpResult:
    """Remove the linearly decodable information about ``y`` from ``X`` (Ravfogel et al., ACL 2020).

    Each iteration fits a logistic-regression probe on the projected train split, records its accuracy on the
    held-out split, and adds the rows of its weight matrix to the removed subspace; the projection is onto the
    orthogonal complement of all removed directions. Stops early when nothing is left to remove.
    """
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, dtype=np.float64)  # (n, d)
    y_arr = np.asarray(y)  # (n,)
    if X.ndim != 2 or X.shape[0] != len(y_arr):
        raise ValueError(f"X must be (n, d) with n = {len(y_arr)} labels, got shape {X.shape}")
    d = X.shape[1]
    train, test = _split(y_arr, test_fraction=test_fraction, seed=seed)
    majority_label = Counter(y_arr[train].tolist()).most_common(1)[0][0]
    majority = float(np.mean(y_arr[test] == majority_label))
    basis = np.zeros((0, d))  # (k, d)
    projection = np.eye(d)  # (d, d)
    accuracies: list[float] = []
    for step in range(iterations + 1):
        probe = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(converge|ConvergenceWarning).*")
            probe.fit(X[train] @ projection, y_arr[train])  # (n_train, d)
        accuracies.append(float(probe.score(X[test] @ projection, y_arr[test])))
        if step == iterations or basis.shape[0] >= d:
            break
        if not np.all(np.isfinite(probe.coef_)):  # the fit overflowed: nothing reliable left to remove
            break
        weights = np.atleast_2d(probe.coef_)  # (c, d)
        basis = _orthonormal_rows(np.vstack([basis, weights]))  # (k, d)
        projection = np.eye(d) - basis.T @ basis  # (d, d)
    return InlpResult(
        projection=projection, directions=basis, accuracies=accuracies, majority_baseline=majority
    )


def _orthonormal_rows(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis (as rows) of the row space of ``matrix`` ``(m, d)``."""
    if matrix.shape[0] == 0:
        return matrix
    _, s, vt = np.linalg.svd(matrix, full_matrices=False)  # s (r,), vt (r, d)
    keep = s > s.max() * max(matrix.shape) * np.finfo(np.float64).eps
    return vt[keep]


def random_projection(d: int, *, rank: int, seed: int = 0) -> np.ndarray:
    """A ``(d, d)`` projection removing ``rank`` random orthonormal directions (the control for INLP)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, rank)))  # (d, rank)
    return np.eye(d) - q @ q.T  # (d, d)


# ----------------------------------------------------------------------------------------------- amnesic


def amnesic_effect(
    X: np.ndarray,
    *,
    labels: Sequence[Any],
    head: Any,
    projection: np.ndarray | InlpResult,
    classes: Sequence[Any] | None = None,
    controls: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
) -> Effect:
    """How much a classifier's accuracy drops when the probed directions are removed, beyond a random removal.

    ``X`` ``(n, d)``: the final representations the classifier ``head`` reads (held-out examples, not those
    INLP was fitted on); ``labels``: the task's gold labels. ``head`` is an object with ``predict(X)`` (scikit-
    learn), a ``torch.nn.Module`` or callable returning logits ``(n, c)`` (argmax, mapped through ``classes``
    when given) or labels ``(n,)``. The control removes as many random directions, ``controls`` times.

    ``estimate = acc(random removal) - acc(INLP removal)`` with a paired bootstrap CI (positive: the removed
    property matters to the classifier more than any directions of that many dimensions would); ``details``
    has the three accuracies and both drops as Effects.
    """
    X = np.asarray(X, dtype=np.float64)  # (n, d)
    y = np.asarray(labels)  # (n,)
    P = projection.projection if isinstance(projection, InlpResult) else np.asarray(projection)  # (d, d)
    d = X.shape[1]
    if P.shape != (d, d):
        raise ValueError(f"projection must be ({d}, {d}) for {d}-dimensional X, got {P.shape}")
    rank = round(float(d - np.trace(P)))

    def correct(features: np.ndarray) -> np.ndarray:
        return (_head_predict(head, features, classes) == y).astype(np.float64)  # (n,)

    original = correct(X)
    amnesic = correct(X @ P)
    control = np.mean(
        [correct(X @ random_projection(d, rank=rank, seed=seed + 1 + k)) for k in range(max(1, controls))],
        axis=0,
    )  # (n,)
    drop = bootstrap_ci(original, minus=amnesic, confidence=confidence, seed=seed).effect("amnesic_drop")
    drop_control = bootstrap_ci(original, minus=control, confidence=confidence, seed=seed).effect(
        "random_drop"
    )
    return bootstrap_ci(control, minus=amnesic, confidence=confidence, seed=seed).effect(
        "amnesic_effect",
        rank=rank,
        controls=max(1, controls),
        accuracy_original=float(original.mean()),
        accuracy_amnesic=float(amnesic.mean()),
        accuracy_random=float(control.mean()),
        drop_amnesic=drop,
        drop_random=drop_control,
    )


def _head_predict(head: Any, X: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Labels predicted by ``head`` on ``X`` ``(n, d)``."""
    if hasattr(head, "predict"):
        return np.asarray(head.predict(X))
    out: Any
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch = None
    if torch is not None and isinstance(head, torch.nn.Module):
        param = next(head.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else "cpu"
        with torch.inference_mode():
            out = head(torch.as_tensor(X, dtype=dtype, device=device)).float().cpu().numpy()  # (n, c)
    elif callable(head):
        out = np.asarray(head(X))
    else:
        raise TypeError(
            f"head must have predict(), be a torch module or a callable, got {type(head).__name__}"
        )
    if out.ndim == 2:
        index = out.argmax(axis=1)  # (n,)
        return np.asarray(classes, dtype=object)[index] if classes is not None else index
    return out


def representation_summary(
    predictor: Any,
    sample: Sequence[Example],
    *,
    classes: Sequence[str],
    max_length: int,
    inlp_iterations: int,
    seed: int,
) -> dict[str, Any]:
    """Linear probes per encoder layer for the gold label; INLP on the last [CLS] (first half of the sample),
    and the amnesic effect on the model's own head (second half) against random removals.

    ``predictor`` is a text model's predictor: ``predictor.model`` has ``encoder`` and ``head.mlp``,
    ``predictor.prepared.tokenizer`` encodes the stories; ``classes`` are the head's labels in logit order.
    """
    model = predictor.model
    states = layer_states(
        model.encoder,
        predictor.prepared.tokenizer,
        list(sample),
        max_length=max_length,
        batch_size=32,
        progress=False,
    )
    labels = [example.label for example in sample]
    layers = probe_layers(states, labels, pooling="cls", seed=seed)
    last = states.cls[-1]  # (n, d) what the sequence head reads
    half = len(sample) // 2
    removed = inlp(last[:half], labels[:half], iterations=inlp_iterations, seed=seed)
    effect = amnesic_effect(
        last[half:],
        labels=labels[half:],
        head=model.head.mlp.eval(),
        projection=removed,
        classes=list(classes),
        seed=seed,
    )
    return {"layers": layers.to_dict(), "inlp_accuracies": removed.accuracies, "amnesic": effect.to_dict()}
