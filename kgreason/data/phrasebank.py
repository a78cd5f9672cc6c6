"""Financial PhraseBank v1.0 (Malo et al. 2014): 3-class sentiment of financial news sentences.

Each agreement subset is one ISO-8859-1 file of ``sentence@label`` lines (``Sentences_50Agree.txt`` ...
``Sentences_AllAgree.txt``). The release has no splits, so the reader makes a stratified 80/10/10 train / dev /
test split with a fixed seed. Exact-duplicate sentences (a few per file, two with conflicting labels in 50Agree)
are kept together in one split, so no sentence is in two splits; ``drop_duplicates=True`` keeps only the first
copy instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from kgreason.core.errors import ConfigError
from kgreason.core.example import Example
from kgreason.data.errors import DatasetFormatError
from kgreason.data.splits import DatasetSplits, stratified_split

logger = logging.getLogger(__name__)

#: Label order (label ids 0, 1, 2).
PHRASEBANK_LABELS = ("negative", "neutral", "positive")
#: Agreement option -> file.
PHRASEBANK_FILES = {
    "50": "Sentences_50Agree.txt",
    "66": "Sentences_66Agree.txt",
    "75": "Sentences_75Agree.txt",
    "all": "Sentences_AllAgree.txt",
}
PHRASEBANK_LICENSE = "CC BY-NC-SA 3.0 Unported (non-commercial, share-alike)"
PHRASEBANK_CITATION = (
    "Pekka Malo, Ankur Sinha, Pekka Korhonen, Jyrki Wallenius, Pyry Takala. Good debt or bad debt: Detecting "
    "semantic orientations in economic texts. JASIST 65(4):782-796, 2014."
)


def _agreement_key(agreement: int | str) -> str:
    key = str(agreement).strip().lower().removeprefix("sentences_").removesuffix("agree")
    if key in ("100", "allagree"):
        key = "all"
    if key not in PHRASEBANK_FILES:
        raise ConfigError(f"agreement must be one of 50, 66, 75 or 'all', got {agreement!r}")
    return key


def read_phrasebank_file(path: str | Path) -> list[Example]:
    """All ``sentence@label`` lines of one PhraseBank file (ISO-8859-1), in file order; blank lines skipped.

    Raises:
        DatasetFormatError: a line without ``@``, with an empty sentence, or with a label outside
            negative / neutral / positive (names the file and the line).
    """
    path = Path(path)
    text = path.read_bytes().decode("latin-1")
    examples: list[Example] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, at, label = line.rpartition("@")
        label = label.strip()
        if not at or label not in PHRASEBANK_LABELS:
            raise DatasetFormatError(
                f"line {line[:60]!r} does not end in a sentiment label",
                path=path,
                line=number,
                expected="sentence@label with label negative, neutral or positive",
            )
        sentence = sentence.strip()
        if not sentence:
            raise DatasetFormatError("empty sentence", path=path, line=number, expected="sentence@label")
        examples.append(
            Example(text=sentence, label=label, uid=f"{path.name}:{number}", metadata={"line": number})
        )
    return examples


def read_financial_phrasebank(
    *,
    data_dir: str | Path | None = None,
    agreement: int | str = 50,
    split_seed: int = 42,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    drop_duplicates: bool = False,
) -> DatasetSplits:
    """Financial PhraseBank, one agreement subset, split stratified train / dev / test.

    Args:
        data_dir: the data folder (default: ``$KGREASON_DATA``, else ``../shared/data``), or the
            ``financial_phrasebank`` folder itself.
        agreement: annotator agreement subset: 50, 66, 75 or ``"all"``.
        split_seed: seed of the stratified split (the same seed gives the same split).
        fractions: train / dev / test fractions.
        drop_duplicates: keep only the first copy of a sentence that occurs more than once.
    """
    from kgreason.data.readers import locate_dataset

    key = _agreement_key(agreement)
    name = PHRASEBANK_FILES[key]
    folder = locate_dataset("financial_phrasebank", data_dir=data_dir, required=[name])
    path = folder / name
    examples = read_phrasebank_file(path)
    lines = len(examples)
    copies = Counter(example.text for example in examples)
    repeated = {text for text, n in copies.items() if n > 1}
    labels_of: dict[str, set[str]] = {}
    for example in examples:
        if example.text in repeated:
            labels_of.setdefault(example.text, set()).add(example.label)
    duplicates = {
        "sentences": len(repeated),
        "extra_copies": sum(copies[text] - 1 for text in repeated),
        "conflicting_labels": sum(len(labels) > 1 for labels in labels_of.values()),
    }
    if drop_duplicates:
        seen: set[str] = set()
        kept = []
        for example in examples:
            if example.text not in seen:
                seen.add(example.text)
                kept.append(example)
        logger.info("%s: dropped %d duplicate sentence copies", name, len(examples) - len(kept))
        examples = kept
    indices = stratified_split(
        [example.label for example in examples],
        fractions=fractions,
        seed=split_seed,
        groups=[example.text for example in examples],
    )
    train = [examples[i] for i in indices.train]
    dev = [examples[i] for i in indices.dev]
    test = [examples[i] for i in indices.test]
    splits = DatasetSplits(
        name="financial_phrasebank",
        train=train,
        dev=dev,
        test=test,
        labels=list(PHRASEBANK_LABELS),
        files=[path],
        options={
            "agreement": key if key == "all" else int(key),
            "split_seed": split_seed,
            "fractions": list(fractions),
            "drop_duplicates": drop_duplicates,
        },
    )
    counts = Counter(example.label for example in examples)
    splits.info = {
        "file": name,
        "lines": lines,
        "sentences": len(examples),
        "label_counts": {label: counts.get(label, 0) for label in PHRASEBANK_LABELS},
        "duplicates": duplicates,
        "split_label_counts": {split: splits.label_counts(split) for split in ("train", "dev", "test")},
        "license": PHRASEBANK_LICENSE,
        "citation": PHRASEBANK_CITATION,
    }
    return splits
