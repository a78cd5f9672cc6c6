"""The folder format of a model built around one Hugging Face encoder (the story reader, the text link
predictor), written by ``save_pretrained`` and read by ``from_pretrained`` (:class:`SavedEncoderModel`)::

    <dir>/<config file>         {"format", "format_version", "kgreason_version", <section>: the model's config}
    <dir>/model.safetensors     the whole state dict (never unpickled)
    <dir>/encoder/              the encoder's config.json and the tokenizer files

The folder is written into a temporary folder beside the target and moved into place, so a crash never leaves
half a model. Loading rebuilds the encoder from ``encoder/config.json``, so neither the original checkpoint nor
the network is needed.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

WEIGHTS_NAME = "model.safetensors"
ENCODER_DIR = "encoder"


class SavedEncoderModel:
    """Mixin: ``save_pretrained`` / ``from_pretrained`` in the folder format above.

    A subclass sets the class attributes and implements :meth:`from_folder_parts` (how to build itself from its
    config, the encoder's config and the tokenizer); ``self.config`` is its config dataclass, ``self.tokenizer``
    its tokenizer and :meth:`folder_encoder` the encoder whose config is saved.
    """

    folder_format: ClassVar[str]
    folder_version: ClassVar[int] = 1
    config_file: ClassVar[str] = "config.json"
    config_section: ClassVar[str]
    config_class: ClassVar[type]
    what: ClassVar[str]

    def folder_encoder(self) -> nn.Module:
        return self.encoder  # type: ignore[attr-defined]

    @classmethod
    def from_folder_parts(cls, *, config: Any, encoder_config: Any, tokenizer: Any) -> Any:
        raise NotImplementedError

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write config, weights (safetensors), the encoder's config and the tokenizer to ``directory``
        atomically."""
        from safetensors.torch import save_model

        from kgreason import __version__
        from kgreason.core.atomic import atomic_directory

        meta = {
            "format": self.folder_format,
            "format_version": self.folder_version,
            "kgreason_version": __version__,
            self.config_section: asdict(self.config),  # type: ignore[attr-defined]
        }
        target = Path(directory)
        with atomic_directory(target) as tmp:
            save_model(
                self, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "kgreason": self.folder_format}
            )
            (tmp / ENCODER_DIR).mkdir()
            self.folder_encoder().config.save_pretrained(tmp / ENCODER_DIR)
            self.tokenizer.save_pretrained(tmp / ENCODER_DIR)  # type: ignore[attr-defined]
            (tmp / self.config_file).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str]) -> Any:
        """A model written by :meth:`save_pretrained` (weights read with safetensors, never unpickled).

        Raises:
            ModelNotAvailableError: no such folder or config file, another format, or unreadable weights.
        """
        from safetensors.torch import load_model
        from transformers import AutoConfig, AutoTokenizer

        from kgreason.core.errors import ModelNotAvailableError

        folder = Path(directory)
        try:
            meta = json.loads((folder / cls.config_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ModelNotAvailableError(f"{folder}: not a saved {cls.what} ({err})") from err
        if not isinstance(meta, dict) or meta.get("format") != cls.folder_format:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ModelNotAvailableError(
                f"{folder}/{cls.config_file}: format {found!r}, expected {cls.folder_format}"
            )
        model = cls.from_folder_parts(
            config=cls.config_class(**meta[cls.config_section]),
            encoder_config=AutoConfig.from_pretrained(folder / ENCODER_DIR),
            tokenizer=AutoTokenizer.from_pretrained(folder / ENCODER_DIR),
        )
        try:
            load_model(model, str(folder / WEIGHTS_NAME))
        except Exception as err:  # safetensors' errors: a truncated or foreign file, other shapes
            raise ModelNotAvailableError(
                f"{folder}/{WEIGHTS_NAME}: not readable weights of a {cls.what} ({err})"
            ) from None
        return model.eval()
