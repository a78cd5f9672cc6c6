"""Text encoders: model resolution (embedded default, local folder, hub id) and sentence embeddings."""

from kgreason.encoders.resolve import (
    ModelSource,
    TextEncoderParts,
    load_text_encoder,
    resolve_model,
    resolve_model_path,
)
from kgreason.encoders.sentence import SentenceEncoder, TextEncoder

__all__ = [
    "ModelSource",
    "SentenceEncoder",
    "TextEncoder",
    "TextEncoderParts",
    "load_text_encoder",
    "resolve_model",
    "resolve_model_path",
]
