"""Shared fixtures: the public data folder (``../shared/data`` or ``$KGREASON_DATA``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgreason.core.paths import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public benchmark data folder; tests that need it are skipped where it is absent."""
    root = data_dir()
    if root is None or not root.is_dir():
        pytest.skip("public data folder not found (set KGREASON_DATA or place it at ../shared/data)")
    return root


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 32) with the embedded tokenizer, saved as a local model folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from kgreason.encoders.resolve import resolve_model_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    import torch

    # The same weights whichever test builds it first (tests' thresholds rely on it).
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
