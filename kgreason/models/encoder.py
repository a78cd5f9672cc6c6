"""Loading a text encoder for fine-tuning: :func:`kgreason.encoders.resolve.load_text_encoder` with
``training=True``.

That resolves the name (``embedded``, a folder or a hub id), reads the config first and refuses what cannot
serve as a bidirectional encoder (decoder-only models such as GPT-2, encoder-decoder models such as T5 / BART),
then loads the tokenizer and ``AutoModel`` (without a pooling layer where the architecture has one) and checks
that every token id the tokenizer can produce, and its padding id, index a row of the model's input embeddings.
The checks and :class:`EncoderMismatchError` live in :mod:`kgreason.encoders.resolve`; they are re-exported here.
"""

from __future__ import annotations

import os

from kgreason.encoders.resolve import (
    EncoderMismatchError,
    TextEncoderParts,
    check_encoder_config,
    check_tokenizer_fits,
    encoder_from_config,
    load_text_encoder,
)

__all__ = [
    "EncoderMismatchError",
    "check_encoder_config",
    "check_tokenizer_fits",
    "encoder_from_config",
    "load_encoder_for_training",
]


def load_encoder_for_training(name_or_path: str | os.PathLike[str] | None = None) -> TextEncoderParts:
    """``load_text_encoder(name_or_path, training=True)``: tokenizer and ``AutoModel`` encoder for fine-tuning
    (train mode, no pooling layer where supported).

    Raises:
        ModelNotAvailableError: no such folder, a folder without ``config.json``, an unknown or unreachable id.
        EncoderMismatchError: not an encoder, or a tokenizer that does not fit the model's embeddings.
    """
    return load_text_encoder(name_or_path, training=True)
