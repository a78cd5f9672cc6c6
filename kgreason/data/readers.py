"""The registry of dataset readers and :func:`read_dataset`.

A reader is a callable ``(*, data_dir=None, **options) -> DatasetSplits``, registered by name. Each built-in
answers to a versioned name (``kgreason.CoNLL2003.v1``) and to its short name (``conll2003``, what configs and
run records of earlier versions carry); both are listed and both give the same function.
``kgreason.Tabular.v1`` (``tabular``) reads your own JSONL / CSV / TSV files (:mod:`kgreason.data.tabular`).
Installed packages add their own through the entry-point group ``kgreason.dataset_readers``::

    [project.entry-points."kgreason.dataset_readers"]
    "acme.Reviews.v1" = "my_pkg.readers:read_reviews"
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgreason.core.errors import ConfigError
from kgreason.core.paths import DATA_ENV
from kgreason.core.paths import data_dir as default_data_dir
from kgreason.core.registry import Registry, did_you_mean

if TYPE_CHECKING:
    from kgreason.data.splits import DatasetSplits

#: Registered dataset readers (built-ins plus the ``kgreason.dataset_readers`` entry points).
readers: Registry[Any] = Registry(kind="dataset reader", entry_point_group="kgreason.dataset_readers")

#: The built-in readers: (versioned name, short name) -> reader.
BUILT_IN_READERS = {
    ("kgreason.CoNLL2003.v1", "conll2003"): "kgreason.data.conll:read_conll2003",
    (
        "kgreason.FinancialPhraseBank.v1",
        "financial_phrasebank",
    ): "kgreason.data.phrasebank:read_financial_phrasebank",
    ("kgreason.CLUTRR.v1", "clutrr"): "kgreason.data.clutrr:read_clutrr",
    ("kgreason.Kinship.v1", "kinship"): "kgreason.data.kinship:read_kinship",
    ("kgreason.StoryRelations.v1", "story_relations"): "kgreason.data.story_relations:read_story_relations",
    ("kgreason.Tabular.v1", "tabular"): "kgreason.data.tabular:read_tabular",
}
for _names, _target in BUILT_IN_READERS.items():
    for _name in _names:  # both listed (names()), so an unknown name's did-you-mean offers either
        readers.register(_name, _target)
del _names, _target, _name


#: Recently read datasets, by (name, data folder, options): a suite reads the same splits for every variant.
_RECENT: dict[tuple, tuple[DatasetSplits, list]] = {}
_RECENT_SIZE = 4


def read_dataset(
    name: str, *, data_dir: str | Path | None = None, cache: bool = True, **options: Any
) -> DatasetSplits:
    """Read the registered dataset ``name`` with reader ``options`` (e.g. ``agreement=50, split_seed=42``).

    The last few datasets read are kept in memory (``cache``), so repeated reads of the same dataset with the
    same options and data folder return the same :class:`DatasetSplits` (treat it as read-only) while none of
    its files has changed (size and modification time).

    Raises:
        RegistryError: no reader is registered as ``name``.
        ConfigError: an option the reader does not take.
    """
    reader = readers.get(name)
    accepted = _keyword_options(reader)
    if accepted is not None:
        for key in options:
            if key not in accepted:
                raise ConfigError(
                    f"dataset {name!r} has no option {key!r}.{did_you_mean(key, sorted(accepted))} "
                    f"Options: {', '.join(sorted(accepted)) or 'none'}"
                )
    # the working folder too: a reader may look a relative path up there (kgreason.Tabular.v1)
    key = (name, str(default_data_dir(data_dir)), str(Path.cwd()), repr(sorted(options.items())))
    if cache and key in _RECENT:
        kept, stamps = _RECENT[key]
        if _file_stamps(kept.files) == stamps:
            return kept
    splits = reader(data_dir=data_dir, **options)
    if cache:
        _RECENT[key] = (splits, _file_stamps(splits.files))
        while len(_RECENT) > _RECENT_SIZE:
            _RECENT.pop(next(iter(_RECENT)))
    return splits


def _file_stamps(files: Sequence[str | Path]) -> list[tuple[str, int, int] | tuple[str]]:
    """(path, size, mtime) of each file; a missing file is (path,)."""
    stamps: list[tuple[str, int, int] | tuple[str]] = []
    for file in files:
        try:
            stat = Path(file).stat()
        except OSError:
            stamps.append((str(file),))
            continue
        stamps.append((str(file), stat.st_size, stat.st_mtime_ns))
    return stamps


def _keyword_options(reader: Any) -> set[str] | None:
    """The option names ``reader`` takes, or ``None`` when it takes any (``**kwargs``)."""
    try:
        parameters = inspect.signature(reader).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name != "data_dir"
    }


def locate_dataset(folder: str, *, data_dir: str | Path | None, required: Sequence[str]) -> Path:
    """The folder holding ``required`` files: ``data_dir/folder``, or ``data_dir`` itself when it holds them.

    Raises:
        DatasetNotFoundError: naming the places looked at and how to point elsewhere.
    """
    from kgreason.data.errors import DatasetNotFoundError

    root = default_data_dir(data_dir)
    candidates = [] if root is None else [root / folder, root]
    for candidate in candidates:
        if all((candidate / name).is_file() for name in required):
            return candidate
    looked = " or ".join(str(c) for c in candidates) or "nowhere (no data folder found)"
    raise DatasetNotFoundError(
        f"dataset folder {folder!r} with {', '.join(required)} not found in {looked}; "
        f"pass data_dir (--data-dir, data.data_dir) or set ${DATA_ENV} to the folder that holds {folder}/"
    )
