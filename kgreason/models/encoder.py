"""Loading a text encoder for fine-tuning, with checks that it is an encoder and fits its tokenizer.

:func:`load_encoder_for_training` resolves the name (``embedded``, a folder or a hub id; see
:mod:`kgreason.encoders.resolve`), reads the config first and refuses what cannot serve as a bidirectional
encoder (decoder-only models such as GPT-2, encoder-decoder models such as T5 / BART), then loads the tokenizer
and ``AutoModel`` (without a pooling layer where the architecture has one) and checks that every token id the
tokenizer can produce, and its padding id, index a row of the model's input embeddings.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from kgreason.core.errors import KGReasonError, ModelNotAvailableError
from kgreason.encoders.resolve import (
    ModelSource,
    TextEncoderParts,
    hub_offline,
    quiet_progress,
    resolve_model,
)

logger = logging.getLogger(__name__)


class EncoderMismatchError(KGReasonError, ValueError):
    """A model that cannot serve as the text encoder: not an encoder, or its tokenizer does not fit it."""


def check_encoder_config(config: Any, *, where: str) -> None:
    """Raise :class:`EncoderMismatchError` unless ``config`` (a ``PretrainedConfig``) is a bidirectional encoder.

    Refused: ``is_decoder`` configs, ``is_encoder_decoder`` configs, and model types that transformers only knows
    as causal language models (no masked-LM form), such as ``gpt2`` or ``llama``.
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = str(getattr(config, "model_type", "") or "")
    archs = ", ".join(getattr(config, "architectures", None) or []) or "unknown"
    what = f"{where}: model type {model_type!r} (architectures: {archs})"
    expected = "expected a bidirectional encoder such as BERT, RoBERTa, DeBERTa or MiniLM"
    if getattr(config, "is_encoder_decoder", False):
        raise EncoderMismatchError(f"{what} is an encoder-decoder model; {expected}")
    if getattr(config, "is_decoder", False):
        raise EncoderMismatchError(f"{what} is configured as a decoder (is_decoder=true); {expected}")
    if (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    ):
        raise EncoderMismatchError(f"{what} is a decoder-only (causal) language model; {expected}")


def check_tokenizer_fits(tokenizer: Any, model: Any, *, where: str) -> None:
    """Raise :class:`EncoderMismatchError` when the tokenizer can produce ids the model has no embedding for."""
    rows = int(model.get_input_embeddings().num_embeddings)
    size = len(tokenizer)
    if size > rows:
        raise EncoderMismatchError(
            f"{where}: the tokenizer has {size} tokens but the model's input embeddings have {rows} rows; "
            "expected the tokenizer saved with this model (or resize the embeddings and save both again)"
        )
    pad = tokenizer.pad_token_id
    if pad is None:
        raise EncoderMismatchError(
            f"{where}: the tokenizer has no padding token; expected one (batches are padded to their longest text)"
        )
    if not 0 <= int(pad) < rows:
        raise EncoderMismatchError(
            f"{where}: the tokenizer's padding id {pad} is outside the model's {rows} embedding rows"
        )


def load_encoder_for_training(name_or_path: str | os.PathLike[str] | None = None) -> TextEncoderParts:
    """Tokenizer and ``AutoModel`` encoder for fine-tuning (train mode, no pooling layer where supported).

    Args:
        name_or_path: ``embedded`` / ``None`` (the packaged all-MiniLM-L6-v2), a local folder or a hub id.

    Returns:
        :class:`~kgreason.encoders.resolve.TextEncoderParts` (``tokenizer``, ``model``, ``source``).

    Raises:
        ModelNotAvailableError: no such folder, a folder without ``config.json``, an unknown or unreachable id.
        EncoderMismatchError: not an encoder, or a tokenizer that does not fit the model's embeddings.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = resolve_model(name_or_path)
    local_only = source.kind != "hub" or hub_offline()
    where = source.name
    with quiet_progress(source.kind != "hub"):
        try:
            config = AutoConfig.from_pretrained(source.path, local_files_only=local_only)
        except Exception as err:
            raise _not_available(source, err, "its config") from err
        check_encoder_config(config, where=where)
        try:
            tokenizer = AutoTokenizer.from_pretrained(source.path, local_files_only=local_only)
        except Exception as err:
            raise _not_available(source, err, "its tokenizer") from err
        try:
            with _transformers_errors_only():
                model, info = _auto_model(
                    AutoModel.from_pretrained,
                    source.path,
                    local_files_only=local_only,
                    output_loading_info=True,
                )
        except Exception as err:
            raise _not_available(source, err, "its weights") from err
    _report_loading(info, where=where)
    check_tokenizer_fits(tokenizer, model, where=where)
    model.train()
    return TextEncoderParts(tokenizer=tokenizer, model=model, source=source)


def encoder_from_config(config: Any) -> Any:
    """An ``AutoModel`` with random weights for ``config`` (no pooling layer where supported)."""
    from transformers import AutoModel

    return _auto_model(AutoModel.from_config, config)


def _auto_model(factory: Any, *args: Any, **kwargs: Any) -> Any:
    """``factory(*args, add_pooling_layer=False, **kwargs)``, or without that argument where it is not known."""
    try:
        return factory(*args, add_pooling_layer=False, **kwargs)
    except TypeError as err:
        if "add_pooling_layer" not in str(err):
            raise
        return factory(*args, **kwargs)


@contextlib.contextmanager
def _transformers_errors_only() -> Iterator[None]:
    """Silence transformers' load report (this module reports what matters through :func:`_report_loading`)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _report_loading(info: dict[str, Any], *, where: str) -> None:
    """Warn about encoder weights the checkpoint lacked (they start random); the unused pooler is expected."""
    missing = list(info.get("missing_keys") or [])
    mismatched = [
        str(item[0]) if isinstance(item, tuple) else str(item) for item in info.get("mismatched_keys") or []
    ]
    unexpected = [key for key in info.get("unexpected_keys") or [] if not str(key).startswith("pooler.")]
    if missing or mismatched:
        logger.warning(
            "%s: %d encoder weights are not in the checkpoint and start random (%s)",
            where,
            len(missing) + len(mismatched),
            ", ".join(sorted(missing + mismatched)[:5]),
        )
    if unexpected:
        logger.info(
            "%s: %d checkpoint weights are not used by the encoder: %s",
            where,
            len(unexpected),
            unexpected[:5],
        )


def _not_available(source: ModelSource, err: Exception, what: str) -> ModelNotAvailableError:
    hint = (
        "is it online, or in the local cache with HF_HUB_OFFLINE set?"
        if source.kind == "hub"
        else "expected a folder written by save_pretrained: config.json, weights and tokenizer files"
    )
    return ModelNotAvailableError(
        f"cannot load {what} from {source.name}: {type(err).__name__}: {err} ({hint})"
    )
