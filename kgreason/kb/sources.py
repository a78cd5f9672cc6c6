"""Opening a knowledge base from wherever it lives: the registry of sources and :func:`open_kb`.

Every source is registered under a versioned name. A registered source is a callable
``(source: str | Path | None = None, **kwargs) -> KnowledgeBase`` (a class works too). Installed packages add
their own through the entry-point group ``kgreason.knowledge_bases``::

    [project.entry-points."kgreason.knowledge_bases"]
    "acme.Products.v1" = "acme_kb:ProductsKB"
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from kgreason.core.errors import KBFormatError, KGReasonError
from kgreason.core.paths import missing_path_message, resolve_data_path
from kgreason.core.registry import Registry
from kgreason.kb.base import KnowledgeBase

#: Registered knowledge-base sources (built-ins plus the ``kgreason.knowledge_bases`` entry points).
knowledge_bases: Registry[Any] = Registry(kind="knowledge base", entry_point_group="kgreason.knowledge_bases")

knowledge_bases.register("kgreason.TripleStore.v1", "kgreason.kb.store:TripleStore.load")
knowledge_bases.register("kgreason.RDF.v1", "kgreason.kb.loaders.rdf:load_rdf")
knowledge_bases.register("kgreason.TSV.v1", "kgreason.kb.loaders.tsv:load_tsv")
knowledge_bases.register("kgreason.SplitFolder.v1", "kgreason.kb.loaders.splits:load_split_folder")
knowledge_bases.register("kgreason.NetworkX.v1", "kgreason.kb.loaders.networkx:from_networkx")

#: Registered sources that read a file or folder (a plug-in's name may stand for something else).
_FILE_SOURCES = frozenset(
    {"kgreason.TripleStore.v1", "kgreason.RDF.v1", "kgreason.TSV.v1", "kgreason.SplitFolder.v1"}
)
#: File extensions (lower case, without ``.gz``) read as RDF, and the rdflib format name of each.
RDF_EXTENSIONS = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".nt": "nt",
    ".ntriples": "nt",
    ".nq": "nquads",
    ".nquads": "nquads",
    ".rdf": "xml",
    ".owl": "xml",
    ".xml": "xml",
    ".jsonld": "json-ld",
    ".json-ld": "json-ld",
    ".n3": "n3",
    ".trig": "trig",
}
TABLE_EXTENSIONS = {".tsv", ".csv", ".txt"}
#: ``--format`` short names that are not registry names.
FORMAT_ALIASES = {
    "store": "kgreason.TripleStore.v1",
    "tsv": "kgreason.TSV.v1",
    "csv": "kgreason.TSV.v1",
    "splits": "kgreason.SplitFolder.v1",
}
RDF_FORMATS = {
    "turtle",
    "ttl",
    "nt",
    "ntriples",
    "nt11",
    "nquads",
    "xml",
    "rdfxml",
    "json-ld",
    "jsonld",
    "n3",
    "trig",
}


class KBNotFoundError(KGReasonError, FileNotFoundError):
    """No knowledge base at the path given (nor under the data folder)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def file_kind(mode: int) -> str:
    """A few words for what a file of this ``st_mode`` is (``a FIFO``, ``a folder``, ...)."""
    for test, word in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return word
    return "not a plain file"


def require_regular_file(path: str | Path) -> None:
    """Raise :class:`KBFormatError` when ``path`` exists but is not a regular file.

    A FIFO, a socket or a device (``/dev/zero``) would be read forever or block; a missing file is left to
    the caller's ``open``.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise KBFormatError(
            f"not a regular file ({file_kind(mode)})",
            path=path,
            expected="a regular file, or a store / split folder",
        )


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def detect_source(path: Path) -> str:
    """The registry name that reads ``path``, judged from its layout and extension."""
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return "kgreason.TripleStore.v1"
        if any((path / f"train{ext}").exists() for ext in (".txt", ".txt.gz", ".tsv", ".tsv.gz")):
            return "kgreason.SplitFolder.v1"
        raise KBFormatError(
            "folder is neither a kgreason store nor a benchmark split folder",
            path=path,
            expected="manifest.json, or train.txt / valid.txt / test.txt",
        )
    suffix = _suffix(path)
    if suffix in RDF_EXTENSIONS:
        return "kgreason.RDF.v1"
    if suffix in TABLE_EXTENSIONS:
        return "kgreason.TSV.v1"
    raise KBFormatError(
        f"cannot tell the format from the extension {suffix or '(none)'!r}; pass --format",
        path=path,
        expected="one of "
        + ", ".join(sorted(set(RDF_EXTENSIONS) | TABLE_EXTENSIONS))
        + ", a store or split folder",
    )


def open_kb(source: Any, *, format: str | None = None, **kwargs: Any) -> KnowledgeBase:
    """Open a knowledge base from a path, a networkx graph, a :class:`KnowledgeBase` or a registered name.

    Args:
        source: a file or folder (relative paths are also looked up under the data folder), a
            ``networkx.MultiDiGraph``, or an existing knowledge base (returned as it is).
        format: a registered source name (``"kgreason.RDF.v1"``, a plug-in's name), a short name
            (``store``, ``tsv``, ``csv``, ``splits``) or an rdflib format (``turtle``, ``nt``, ``xml``, ...).
            Detected from the path when omitted.
        kwargs: passed to the source (e.g. ``names=`` for TSV, ``encoding=``).
    """
    if isinstance(source, KnowledgeBase):
        return source
    if source is not None and type(source).__module__.startswith("networkx"):
        return knowledge_bases.get("kgreason.NetworkX.v1")(source, **kwargs)
    if format is not None and format.lower() in RDF_FORMATS:
        kwargs["format"] = format.lower()
        format = "kgreason.RDF.v1"
    name = FORMAT_ALIASES.get(format, format) if format else None
    if source is None:
        if name is None:
            raise ValueError("open_kb needs a source or a registered format name")
        return knowledge_bases.get(name)(**kwargs)
    path = resolve_data_path(source)
    if not path.exists() and (name is None or name in _FILE_SOURCES):
        raise KBNotFoundError(missing_path_message(source))
    if path.exists() and not path.is_dir():
        require_regular_file(path)
    if name is None:
        name = detect_source(path)
    return knowledge_bases.get(name)(path, **kwargs)
