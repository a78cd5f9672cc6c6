"""The registry of company-graph sources: ``data.source`` of a risk config names one of them.

A source is a callable ``(*, path: str | None, data_dir: str | None, **options) -> CompanyGraph``; ``path`` and
``data_dir`` are the config's ``data.path`` / ``data.data_dir`` and ``options`` its ``data.options`` (the
generator's settings). Built-ins, with the short names configs already use::

    kgreason.finance.Generator.v1   generator   the embedded company-graph generator
    kgreason.finance.SMEsD.v1       smesd       the SMEsD release in the data folder
    kgreason.finance.CSV.v1         csv         a folder with companies.csv, edges.csv, labels.csv, ...
    kgreason.finance.RDF.v1         rdf         an RDF file using the finance ontology

Installed packages add their own through the entry-point group ``kgreason.company_graph_sources``::

    [project.entry-points."kgreason.company_graph_sources"]
    "acme.Loans.v1" = "acme_finance:read_loans"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kgreason.core.errors import ConfigError
from kgreason.core.registry import Registry, did_you_mean

if TYPE_CHECKING:
    from kgreason.finance.config import GraphSourceConfig
    from kgreason.finance.graph import CompanyGraph

#: Registered company-graph sources (built-ins plus the ``kgreason.company_graph_sources`` entry points).
company_graph_sources: Registry[Callable[..., CompanyGraph]] = Registry(
    kind="company-graph source", entry_point_group="kgreason.company_graph_sources"
)

company_graph_sources.register("kgreason.finance.Generator.v1", "kgreason.finance.sources:generator_source")
company_graph_sources.register("kgreason.finance.SMEsD.v1", "kgreason.finance.sources:smesd_source")
company_graph_sources.register("kgreason.finance.CSV.v1", "kgreason.finance.sources:csv_source")
company_graph_sources.register("kgreason.finance.RDF.v1", "kgreason.finance.sources:rdf_source")

#: The short ``data.source`` names of the built-ins (what saved configs carry).
SOURCE_ALIASES = {
    "generator": "kgreason.finance.Generator.v1",
    "smesd": "kgreason.finance.SMEsD.v1",
    "csv": "kgreason.finance.CSV.v1",
    "rdf": "kgreason.finance.RDF.v1",
}


def source_name(name: str) -> str:
    """The registered name ``name`` stands for (a short name's versioned name).

    Raises:
        ConfigError: ``data.source: unknown company-graph source 'x'. Did you mean ...? Registered: ...``.
    """
    name = SOURCE_ALIASES.get(name, name)
    if name in company_graph_sources:
        return name
    choices = [*SOURCE_ALIASES, *company_graph_sources.names()]
    raise ConfigError(
        f"data.source: unknown company-graph source {name!r}.{did_you_mean(name, choices)} "
        f"Registered: {', '.join(choices)}"
    )


def read_company_graph(config: GraphSourceConfig) -> CompanyGraph:
    """The company graph of ``config`` (``data.source`` resolved in :data:`company_graph_sources`), unvalidated."""
    source = company_graph_sources.get(source_name(config.source))
    return source(path=config.path, data_dir=config.data_dir, **config.options)


# ------------------------------------------------------------------------------------------- built-ins
def generator_source(*, path: str | None = None, data_dir: str | None = None, **options: Any) -> CompanyGraph:
    """The generated company graph; ``options`` are :class:`~kgreason.finance.generator.GeneratorConfig` settings."""
    from kgreason.finance.generator import read_company_generator

    return read_company_generator(data_dir=data_dir, **options)


def smesd_source(*, path: str | None = None, data_dir: str | None = None, **options: Any) -> CompanyGraph:
    """SMEsD from the data folder (:func:`~kgreason.finance.smesd.read_smesd`); ``options`` are not used."""
    from kgreason.finance.smesd import read_smesd

    return read_smesd(data_dir=data_dir)


def csv_source(*, path: str | None = None, data_dir: str | None = None, **options: Any) -> CompanyGraph:
    """A CSV folder (:func:`~kgreason.finance.csv_loader.load_company_csv`); ``options`` are not used."""
    from kgreason.finance.csv_loader import load_company_csv

    if not path:
        raise ConfigError("data.source 'csv' needs data.path (a folder with companies.csv, edges.csv, ...)")
    return load_company_csv(path)


def rdf_source(*, path: str | None = None, data_dir: str | None = None, **options: Any) -> CompanyGraph:
    """An RDF file (:func:`~kgreason.finance.rdf_loader.load_company_rdf`); ``options`` are not used."""
    from kgreason.finance.rdf_loader import load_company_rdf

    if not path:
        raise ConfigError("data.source 'rdf' needs data.path (an RDF file)")
    return load_company_rdf(path)
