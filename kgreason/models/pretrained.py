"""Saving and loading a :class:`~kgreason.models.fused.KGReasonModel` as a self-contained folder (no pickle)::

    <dir>/config.json            ModelConfig, the task's config, entity feature shapes, PEFT, kgreason version
    <dir>/model.safetensors      the whole state dict: encoder, entity features, GNN, head (shared tensors once)
    <dir>/encoder/               the Hugging Face encoder's config.json and the tokenizer files
    <dir>/adapter/               prefix tuning only: peft's adapter_config.json + adapter_model.safetensors

Loading rebuilds the encoder with ``AutoModel.from_config(encoder/config.json)`` and then loads
``model.safetensors``, so the original checkpoint (or the network) is never needed. LoRA and AdaLoRA are saved
merged into the base weights (``merge_and_unload`` on a copy), so the saved model is a plain one; prefix tuning
cannot be merged, so its adapter is saved beside the weights and applied again on load. The folder is written
into a temporary folder beside the target and moved into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.core.errors import ModelNotAvailableError

if TYPE_CHECKING:
    from kgreason.models.fused import KGReasonModel

FORMAT = "kgreason.KGReasonModel"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ENCODER_DIR = "encoder"
ADAPTER_DIR = "adapter"
#: state-dict keys of the entity feature tables (read before building the model, to size them)
FEATURE_KEYS = {
    "kge": "reasoner.entities.kge",
    "names": "reasoner.entities.names",
    "attributes": "reasoner.entities.attributes",
}


def save_pretrained(
    model: KGReasonModel, directory: str | os.PathLike[str], *, task_config: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` to ``directory`` atomically (see the module docstring) and return the folder.

    Args:
        model: the model (its encoder may be PEFT-wrapped).
        directory: the target folder (replaced when it exists).
        task_config: what rebuilds the task (``Task.config()``), kept in ``config.json``.
    """
    from safetensors.torch import save_model

    from kgreason import __version__
    from kgreason.core.atomic import atomic_directory
    from kgreason.core.config import config_to_dict
    from kgreason.models.peft import peft_method

    method = peft_method(model.encoder)
    plain = model
    if method != "none":
        plain = copy.deepcopy(model)
        if method in ("lora", "adalora"):
            plain.encoder = plain.encoder.merge_and_unload()
        else:
            plain.encoder = plain.encoder.get_base_model()
    features = {
        part: list(table.shape)
        for part in FEATURE_KEYS
        if plain.reasoner is not None and (table := getattr(plain.reasoner.entities, part)) is not None
    }
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kgreason_version": __version__,
        "model": config_to_dict(model.config),
        "task": task_config,
        "encoder_source": model.encoder_source,
        "entity_features": features,
        "peft": {"method": method, "merged": method in ("lora", "adalora")},
    }
    target = Path(directory)
    with atomic_directory(target) as tmp:
        save_model(plain, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "kgreason": FORMAT})
        if plain.encoder is not None or model.tokenizer is not None:
            (tmp / ENCODER_DIR).mkdir()
        if plain.encoder is not None:
            plain.encoder.config.save_pretrained(tmp / ENCODER_DIR)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(tmp / ENCODER_DIR)
        if method == "prefix":
            model.encoder.save_pretrained(tmp / ADAPTER_DIR, safe_serialization=True)
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return target


def read_saved_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a saved model folder (``model``, ``task``, ``peft``, ...).

    Raises:
        ModelNotAvailableError: the folder or its config is missing, unreadable, or of another format.
    """
    folder = Path(directory)
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise ModelNotAvailableError(
            f"{folder}: not a saved kgreason model ({CONFIG_NAME} is missing; expected the folder written by "
            f"save_pretrained: {CONFIG_NAME}, {WEIGHTS_NAME}, {ENCODER_DIR}/)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelNotAvailableError(f"{path}: unreadable ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelNotAvailableError(f"{path}: not a {FORMAT} config (expected 'format': {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelNotAvailableError(
            f"{path}: format version {meta.get('format_version')!r}, this kgreason reads version {FORMAT_VERSION}"
        )
    return meta


def load_tokenizer(directory: str | os.PathLike[str]) -> Any:
    """The tokenizer saved with a model folder (``<dir>/encoder``)."""
    from transformers import AutoTokenizer

    folder = Path(directory) / ENCODER_DIR
    if not folder.is_dir():
        raise ModelNotAvailableError(f"{folder}: missing; the model was saved without a tokenizer")
    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:
        raise ModelNotAvailableError(
            f"{folder}: no loadable tokenizer ({type(err).__name__}: {err})"
        ) from err


def load_pretrained(directory: str | os.PathLike[str]) -> KGReasonModel:
    """Rebuild a model written by :func:`save_pretrained` (in eval mode).

    Raises:
        ModelNotAvailableError: files are missing or do not fit each other.
    """
    from safetensors import safe_open
    from safetensors.torch import load_model
    from transformers import AutoConfig

    from kgreason.core.config import build_config
    from kgreason.models.config import ModelConfig
    from kgreason.models.encoder import encoder_from_config
    from kgreason.models.fused import KGReasonModel
    from kgreason.models.knowledge import EntityFeatures

    folder = Path(directory)
    meta = read_saved_config(folder)
    config = build_config(ModelConfig, meta["model"])
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelNotAvailableError(f"{weights}: missing (expected the weights written by save_pretrained)")
    encoder = None
    if config.variant != "graph":
        encoder_dir = folder / ENCODER_DIR
        try:
            encoder_config = AutoConfig.from_pretrained(str(encoder_dir), local_files_only=True)
        except Exception as err:
            raise ModelNotAvailableError(
                f"{encoder_dir}: no readable encoder config.json ({type(err).__name__}: {err})"
            ) from err
        encoder = encoder_from_config(encoder_config)
    tokenizer = load_tokenizer(folder) if (folder / ENCODER_DIR / "tokenizer_config.json").is_file() else None
    tables = {}
    try:
        with safe_open(str(weights), framework="pt") as handle:
            present = set(handle.keys())
            for part, key in FEATURE_KEYS.items():
                if key in present:
                    tables[part] = handle.get_tensor(key)
    except Exception as err:  # safetensors raises its own SafetensorError for a truncated or foreign file
        raise _unreadable(weights, err) from None
    model = KGReasonModel(
        config, encoder=encoder, tokenizer=tokenizer, entity_features=EntityFeatures(**tables)
    )
    model.encoder_source = meta.get("encoder_source")
    try:
        load_model(model, str(weights), strict=True)
    except RuntimeError as err:
        raise ModelNotAvailableError(
            f"{weights}: does not fit the model that {CONFIG_NAME} describes ({err})"
        ) from err
    except Exception as err:
        raise _unreadable(weights, err) from None
    if (meta.get("peft") or {}).get("method") == "prefix":
        from peft import PeftModel

        model.encoder = PeftModel.from_pretrained(
            model.encoder, str(folder / ADAPTER_DIR), is_trainable=False
        )
    model.eval()
    return model


def _unreadable(weights: Path, err: Exception) -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"{weights}: not a readable safetensors file ({err}); expected the complete weights written by "
        "save_pretrained (the file may be truncated: retrain, or copy the folder again)"
    )
