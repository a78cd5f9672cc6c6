"""Opening a knowledge base from wherever it lives: the registry of sources and :func:`open_kb`.

Every source is registered under a versioned name. A registered source is a callable
``(source: str | Path | None = None, **kwargs) -> KnowledgeBase`` (a class works too). Installed packages add
their own through the entry-point group ``kgreason.knowledge_bases``::

    [project.entry-points."kgreason.knowledge_bases"]
    "acme.Products.v1" = "acme_kb:ProductsKB"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgreason.errors import KBFormatError
from kgreason.kb.base import KnowledgeBase
from kgreason.paths import resolve_data_path
from kgreason.registry import Registry

#: Registered knowledge-base sources (built-ins plus the ``kgreason.knowledge_bases`` entry points).
knowledge_bases: Registry[Any] = Registry(kind="knowledge base", entry_point_group="kgreason.knowledge_bases")

knowledge_bases.register("kgreason.TripleStore.v1", "kgreason.kb.store:TripleStore.load")
knowledge_bases.register("kgreason.RDF.v1", "kgreason.kb.loaders.rdf:load_rdf")
knowledge_bases.register("kgreason.TSV.v1", "kgreason.kb.loaders.tsv:load_tsv")
knowledge_bases.register("kgreason.SplitFolder.v1", "kgreason.kb.loaders.splits:load_split_folder")
knowledge_bases.register("kgreason.NetworkX.v1", "kgreason.kb.loaders.networkx:from_networkx")

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
        if any((path / f"train{ext}").is_file() for ext in (".txt", ".txt.gz", ".tsv", ".tsv.gz")):
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
    if name is None:
        if not path.exists():
            raise FileNotFoundError(f"no such knowledge base file or folder: {source}")
        name = detect_source(path)
    return knowledge_bases.get(name)(path, **kwargs)
