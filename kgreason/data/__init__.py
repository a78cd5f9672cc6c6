"""Examples and dataset readers (CoNLL-2003, Financial PhraseBank, ...)."""

from kgreason.data.example import Example

__all__ = ["Example"]
