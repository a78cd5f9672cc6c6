"""Examples and dataset readers (CoNLL-2003, Financial PhraseBank, ...)."""

from kgreason.core.example import Example

__all__ = ["Example"]
