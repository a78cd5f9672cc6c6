"""RDF files in and out of a :class:`~kgreason.kb.store.TripleStore`: every rdflib format, gzipped or not.

Reading (:func:`load_rdf`, :func:`read_rdf`):

* formats: Turtle, N-Triples, N-Quads, RDF/XML, JSON-LD, N3 and TriG, from the extension
  (:data:`~kgreason.kb.sources.RDF_EXTENSIONS`, ``.gz`` accepted) or ``format=``;
* parsers: N-Triples, Turtle and N-Quads stream through pyoxigraph's Rust parser (6-8x the speed of
  ``rdflib.Graph().parse`` and 1/4-1/10 of its memory, see ``benchmarks/results/ingest.md``); the other
  formats, and all of them with ``parser="rdflib"`` or without pyoxigraph, go through rdflib into a
  recording store that streams each statement into the builder, so ids follow the parser's statement order
  (for line formats both parsers give the very same ids);
* keys are canonical N-Triples terms, the same from both parsers: ``<iri>``; literals with ``\\b \\t \\n \\f
  \\r \\" \\\\`` escaped and other control characters as ``\\uXXXX``, lower-case language tags, no
  ``^^xsd:string``, lexical forms exactly as written (rdflib's literal normalisation is off while reading);
  blank nodes renamed ``_:b0, _:b1, ...`` in order of first appearance (blank-node labels are file-local);
* ``rdfs:label`` and ``skos:prefLabel`` with a literal object give the preferred label (an English or
  no-language literal first, then ``skos:prefLabel`` before ``rdfs:label``, then file order; the other
  ones become aliases), ``skos:altLabel`` gives aliases. These statements are not graph triples; they are
  kept verbatim in the store's ``annotations`` so that :func:`write_rdf` re-emits them. Every other literal
  object is an ordinary tail entity;
* named graphs (N-Quads, TriG, JSON-LD) are merged into one graph; :class:`RDFLoadReport` counts them;
* duplicate statements are dropped and counted, self-loops kept, entities without a label allowed;
* bad input raises :class:`~kgreason.core.errors.KBFormatError` naming the file, the 1-based line (and column when
  the parser knows it) and what was expected; nothing half-loaded is returned;
* reading never reaches the network or other documents: a JSON-LD ``@context`` (or ``@import``) that names
  another document is refused, RDF/XML is parsed by a defusedxml parser that refuses external entities and
  entities whose values refer to other entities ("billion laughs"; a plain-text entity such as
  ``<!ENTITY owl "http://www.w3.org/2002/07/owl#">`` is fine), and ``owl:imports`` is an ordinary triple.
  A FIFO or device is refused rather than read forever.

Writing (:func:`write_rdf`): N-Triples by direct string formatting, other formats through an rdflib graph,
always atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from kgreason.core.atomic import atomic_output
from kgreason.core.errors import KBFormatError
from kgreason.kb.sources import require_regular_file
from kgreason.kb.store import TripleStore, TripleStoreBuilder

if TYPE_CHECKING:
    from tqdm import tqdm

    from kgreason.kb.base import KnowledgeBase

log = logging.getLogger(__name__)

RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
SKOS_PREF_LABEL = "<http://www.w3.org/2004/02/skos/core#prefLabel>"
SKOS_ALT_LABEL = "<http://www.w3.org/2004/02/skos/core#altLabel>"
#: Label predicates -> rank among preferred labels (lower wins), ``None`` for alias-only predicates.
LABEL_PREDICATES: dict[str, int | None] = {SKOS_PREF_LABEL: 0, RDFS_LABEL: 1, SKOS_ALT_LABEL: None}
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"

#: Canonical format name of every accepted spelling (rdflib names, common aliases).
FORMAT_NAMES = {
    "turtle": "turtle",
    "ttl": "turtle",
    "nt": "nt",
    "ntriples": "nt",
    "n-triples": "nt",
    "nt11": "nt",
    "nquads": "nquads",
    "nq": "nquads",
    "n-quads": "nquads",
    "xml": "xml",
    "rdfxml": "xml",
    "rdf/xml": "xml",
    "application/rdf+xml": "xml",
    "json-ld": "json-ld",
    "jsonld": "json-ld",
    "n3": "n3",
    "trig": "trig",
}
FORMAT_TITLES = {
    "turtle": "Turtle",
    "nt": "N-Triples",
    "nquads": "N-Quads",
    "xml": "RDF/XML",
    "json-ld": "JSON-LD",
    "n3": "N3",
    "trig": "TriG",
}
#: Formats that pyoxigraph streams (the fast path); rdflib reads the rest.
FAST_FORMATS = frozenset({"nt", "turtle", "nquads"})
PARSERS = ("auto", "pyoxigraph", "rdflib")
#: Files at least this large (on disk) get a progress bar.
PROGRESS_MIN_BYTES = 5 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
#: Longest value an RDF/XML ``<!ENTITY>`` may have: each reference expands at most ~this/3 times its size.
MAX_XML_ENTITY_CHARS = 256

# N-Triples string escaping, identical to pyoxigraph's (oxrdf ``print_quoted_str``).
_ESCAPES = {i: f"\\u{i:04X}" for i in [*range(0x20), 0x7F]}
_ESCAPES.update({0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"})
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\]')
# Characters that may not appear raw in an N-Triples IRIREF.
_IRI_ESCAPES = {i: f"\\u{i:04X}" for i in [*range(0x21), *map(ord, '<>"{}|^`\\')]}
_IRI_NEEDS_ESCAPE = re.compile(r'[\x00-\x20<>"{}|^`\\]')


# ---------------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class RDFLoadReport:
    """What reading one RDF file found.

    ``statements`` counts every statement read (graph triples, label statements and duplicates);
    ``named_graphs`` the distinct named graphs merged into the one graph of the store.
    """

    path: str
    format: str
    parser: str
    statements: int
    triples: int
    label_statements: int
    duplicates_dropped: int
    named_graphs: int
    blank_nodes: int
    entities: int
    relations: int
    seconds: float


@dataclass(frozen=True)
class RDFLoad:
    """A loaded store and the report of its reading."""

    store: TripleStore
    report: RDFLoadReport


# ---------------------------------------------------------------------------------------------- terms
def quote_literal(text: str) -> str:
    """``text`` as an N-Triples quoted string (canonical escapes, as pyoxigraph prints literals)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return '"' + text.translate(_ESCAPES) + '"'


def literal_key(lexical: str, *, language: str | None = None, datatype: str | None = None) -> str:
    """The canonical N-Triples form of a literal (``datatype`` is an IRI without angle brackets)."""
    if language:
        return f"{quote_literal(lexical)}@{language.lower()}"
    if datatype and datatype != XSD_STRING:
        return f"{quote_literal(lexical)}^^{iri_key(datatype)}"
    return quote_literal(lexical)


def iri_key(iri: str) -> str:
    """``<iri>``, with characters that N-Triples forbids inside ``<>`` written as ``\\uXXXX``."""
    if _IRI_NEEDS_ESCAPE.search(iri) is None:
        return f"<{iri}>"
    return "<" + iri.translate(_IRI_ESCAPES) + ">"


def rdflib_term_key(term: Any) -> str:
    """The canonical N-Triples key of an rdflib term (equal to ``str()`` of the same pyoxigraph term).

    Blank nodes give ``_:<id>``; :func:`read_rdf` renames them by first appearance afterwards.
    """
    from rdflib.term import BNode, Literal, URIRef

    if isinstance(term, URIRef):
        return iri_key(str(term))
    if isinstance(term, Literal):
        datatype = term.datatype
        return literal_key(
            str(term), language=term.language, datatype=None if datatype is None else str(datatype)
        )
    if isinstance(term, BNode):
        return f"_:{term}"
    raise TypeError(f"{type(term).__name__} {term!r} is not an RDF term (N3 formulas and variables are not)")


def rdf_format(path: str | Path, format: str | None = None) -> str:
    """Canonical format name (``turtle``, ``nt``, ``nquads``, ``xml``, ``json-ld``, ``n3``, ``trig``)."""
    from kgreason.kb.sources import RDF_EXTENSIONS

    if format is not None:
        found = FORMAT_NAMES.get(format.lower())
        if found is None:
            raise ValueError(f"unknown RDF format {format!r}; use one of {', '.join(sorted(FORMAT_NAMES))}")
        return found
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in RDF_EXTENSIONS:
        raise KBFormatError(
            f"cannot tell the RDF format from the extension {suffix or '(none)'!r}; pass format=",
            path=path,
            expected="one of " + ", ".join(sorted(RDF_EXTENSIONS)) + " (optionally .gz)",
        )
    return FORMAT_NAMES[RDF_EXTENSIONS[suffix]]


# ---------------------------------------------------------------------------------------------- ingest
class _Ingest:
    """Collects statements into a :class:`TripleStoreBuilder`: graph triples, labels and annotations."""

    def __init__(self, *, builder: TripleStoreBuilder) -> None:
        self.builder = builder
        self.rows = builder.split_rows("all")
        # Relations known not to be label predicates: the hot loops skip the label check for them.
        self.plain_relations: dict[str, int] = {}
        self.annotations: list[tuple[int, str, str]] = []
        # Best preferred-label candidate per entity id so far: (language rank, predicate rank, order, text).
        self.preferred: dict[int, tuple[int, int, int, str]] = {}
        self.aliases: list[tuple[int, str]] = []
        self.graphs: set[str] = set()

    def relation(self, predicate: str) -> int:
        rel = self.builder.relation(predicate)
        if predicate not in LABEL_PREDICATES:
            self.plain_relations[predicate] = rel
        return rel

    def label(self, subject: str, predicate: str, literal: str, text: str, language: str | None) -> None:
        entity = self.builder.entity(subject)
        self.annotations.append((entity, predicate, literal))
        rank = LABEL_PREDICATES[predicate]
        if rank is None:
            self.aliases.append((entity, text))
            return
        english = not language or language.lower() == "en" or language.lower().startswith("en-")
        candidate = (0 if english else 1, rank, len(self.annotations), text)
        best = self.preferred.get(entity)
        if best is None:
            self.preferred[entity] = candidate
        elif candidate < best:  # the one it beats becomes an alias
            self.preferred[entity] = candidate
            self.aliases.append((entity, best[3]))
        else:
            self.aliases.append((entity, text))

    def add(self, subject: str, predicate: str, obj: str) -> None:
        """One statement given by keys (the rdflib path; the pyoxigraph loop inlines this)."""
        rel = self.plain_relations.get(predicate)
        if rel is None:
            rel = self.relation(predicate)
        self.rows.extend((self.builder.entity(subject), rel, self.builder.entity(obj)))

    def finish(self, *, path: Path, fmt: str, parser: str, started: float) -> RDFLoad:
        builder = self.builder
        if not self.rows and not self.annotations:
            raise KBFormatError(
                "no triples",
                path=path,
                expected=f"at least one {FORMAT_TITLES[fmt]} statement",
            )
        blank = sum(1 for key in builder.entity_ids if key[0] == "_")
        keys: list[str] = []
        if blank or self.preferred or self.aliases:  # an id -> key list (8 bytes per entity) only when needed
            keys = list(builder.entity_ids)
        if blank:
            renamed = 0
            for i, key in enumerate(keys):
                if key[0] == "_":
                    keys[i] = f"_:b{renamed}"
                    renamed += 1
            builder.entity_ids = dict(zip(keys, range(len(keys)), strict=True))
        for entity, (*_, text) in self.preferred.items():
            builder.add_label(keys[entity], text, preferred=True)
        for entity, text in self.aliases:
            builder.add_label(keys[entity], text, preferred=False)
        self.preferred, self.aliases = {}, []  # free them before the build peaks
        unique = list(dict.fromkeys(self.annotations))
        statements = len(self.rows) // 3 + len(self.annotations)
        duplicate_labels = len(self.annotations) - len(unique)
        builder.annotations = self.annotations = unique
        store = builder.build()
        triples = int(store.triple_array().shape[0])
        dropped = sum(store.duplicates_dropped().values())
        report = RDFLoadReport(
            path=str(path),
            format=fmt,
            parser=parser,
            statements=statements,
            triples=triples,
            label_statements=len(unique),
            duplicates_dropped=dropped + duplicate_labels,
            named_graphs=len(self.graphs),
            blank_nodes=blank,
            entities=store.num_entities,
            relations=store.num_relations,
            seconds=time.perf_counter() - started,
        )
        if self.graphs:
            log.info("%s: merged %d named graph(s) into one graph", path, len(self.graphs))
        return RDFLoad(store=store, report=report)


# ---------------------------------------------------------------------------------------------- input
class _CountingReader(io.RawIOBase):
    """A raw binary reader that advances a progress bar by the bytes it reads."""

    def __init__(self, handle: IO[bytes], bar: tqdm | None) -> None:
        super().__init__()
        self._handle = handle
        self._bar = bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._handle.readinto(buffer)
        if self._bar is not None and n:
            self._bar.update(n)
        return n


@contextlib.contextmanager
def _open_binary(path: Path, *, progress: bool, desc: str) -> Iterator[IO[bytes]]:
    """The decompressed bytes of ``path`` (gzip when it ends in ``.gz``), a BOM skipped, with a progress bar."""
    size = path.stat().st_size
    bar = None
    if progress and size >= PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=desc, leave=False)
    try:
        with open(path, "rb") as raw:
            stream: IO[bytes] = io.BufferedReader(_CountingReader(raw, bar), buffer_size=1 << 20)
            if path.name.lower().endswith(".gz"):
                stream = gzip.GzipFile(fileobj=stream, mode="rb")
            reader = (
                io.BufferedReader(stream, buffer_size=1 << 20)
                if isinstance(stream, gzip.GzipFile)
                else stream
            )
            if reader.peek(3)[:3] == _UTF8_BOM:
                reader.read(3)
            yield reader
    except (OSError, EOFError, zlib.error) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise KBFormatError(f"cannot read the file: {err}", path=path) from None
    finally:
        if bar is not None:
            bar.close()


def _read_all(path: Path, *, progress: bool, desc: str) -> bytes:
    with _open_binary(path, progress=progress, desc=desc) as handle:
        return handle.read()


def _check_utf8(data: bytes, *, path: Path) -> None:
    """Invalid UTF-8 raises :class:`KBFormatError` with the line and column of the first bad byte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise KBFormatError(
            f"invalid UTF-8 byte 0x{data[err.start]:02x}",
            path=path,
            line=line,
            column=column,
            expected="UTF-8 text",
        ) from None


# ---------------------------------------------------------------------------------------------- errors
_OX_POSITION = re.compile(
    r"^Parser error (?:at|on) line \d+(?: between columns \d+ and \d+| column \d+)?: ", re.S
)
_OX_PREFIX = re.compile(r"The prefix (.*?) has not been declared")
_RDFLIB_PREFIX = re.compile(r'Prefix "(.*?)" not bound')
_XML_POSITION = re.compile(r":(\d+):(\d+): ")


def _prefix_error(prefix: str, *, path: Path, line: int | None, column: int | None) -> KBFormatError:
    prefix = prefix.rstrip(":")
    return KBFormatError(
        f"prefix '{prefix}:' is not declared",
        path=path,
        line=line,
        column=column,
        expected=f"'@prefix {prefix}: <IRI> .' before its first use",
    )


def _oxigraph_error(err: SyntaxError, *, path: Path, fmt: str) -> KBFormatError:
    """Map pyoxigraph's ``SyntaxError`` (1-based ``lineno`` and ``offset``) to :class:`KBFormatError`."""
    message = _OX_POSITION.sub("", str(err.msg or err)).strip()
    line, column = err.lineno, err.offset
    if match := _OX_PREFIX.search(message):
        return _prefix_error(match.group(1), path=path, line=line, column=column)
    if "UTF-8" in message:
        return KBFormatError(message, path=path, line=line, column=column, expected="UTF-8 text")
    return KBFormatError(message, path=path, line=line, column=column, expected=f"valid {FORMAT_TITLES[fmt]}")


def rdflib_error(err: Exception, *, path: Path, fmt: str, data: bytes, line: int | None) -> KBFormatError:
    """Map rdflib's parser errors (BadSyntax, ParserError, SAX and JSON errors) to :class:`KBFormatError`."""
    import json
    import xml.sax

    from rdflib.plugins.parsers.notation3 import BadSyntax

    expected = f"valid {FORMAT_TITLES[fmt]}"
    if isinstance(err, BadSyntax):
        line = err.lines + 1
        source = err._str.decode("utf-8", "replace")
        column = err._i - (source.rfind("\n", 0, err._i) + 1) + 1
        if match := _RDFLIB_PREFIX.search(err._why):
            return _prefix_error(match.group(1), path=path, line=line, column=column)
        return KBFormatError(err._why, path=path, line=line, column=column, expected=expected)
    if isinstance(err, xml.sax.SAXParseException):
        return KBFormatError(
            err.getMessage(),
            path=path,
            line=err.getLineNumber(),
            column=err.getColumnNumber() + 1,
            expected=expected,
        )
    if isinstance(err, json.JSONDecodeError):
        return KBFormatError(err.msg, path=path, line=err.lineno, column=err.colno, expected="valid JSON")
    message = str(err).strip() or type(err).__name__
    if isinstance(err, IndexError) and fmt in ("turtle", "n3", "trig"):  # rdflib's N3 parser ran off the end
        text = data.decode("utf-8", "replace").rstrip()
        message = "the file ends inside a statement"
        line, expected = text.count("\n") + 1, "a complete last statement, ending with '.'"
    elif isinstance(err, LookupError | AttributeError | AssertionError | RecursionError):  # rdflib failed
        message = f"rdflib could not parse it ({type(err).__name__}: {message})"
    column = None
    match = _XML_POSITION.search(message) if fmt == "xml" else None  # rdflib's RDF/XML: "id:line:col: msg"
    if match:
        line, column = int(match.group(1)), int(match.group(2)) + 1
        message = message[match.end() :]
    if fmt in ("nt", "nquads") and line is not None:
        lines = re.split(r"\r\n|\r|\n", data.decode("utf-8", "replace"))
        statement = lines[line - 1].strip() if line <= len(lines) else ""
        message = f"not a valid statement: {statement[:100]!r}"
        expected = "subject predicate object" + (" [graph]" if fmt == "nquads" else "") + " ."
    return KBFormatError(message, path=path, line=line, column=column, expected=expected)


# ---------------------------------------------------------------------------------------------- parsers
def _read_with_oxigraph(path: Path, *, fmt: str, ingest: _Ingest, progress: bool) -> None:
    """Stream ``path`` through ``pyoxigraph.parse`` straight into the builder's id tables."""
    import pyoxigraph as ox

    ox_format = {"nt": ox.RdfFormat.N_TRIPLES, "turtle": ox.RdfFormat.TURTLE, "nquads": ox.RdfFormat.N_QUADS}[
        fmt
    ]
    literal_type = ox.Literal
    default_graph = ox.DefaultGraph
    ent = ingest.builder.entity_ids
    plain = ingest.plain_relations
    labels = LABEL_PREDICATES
    append = ingest.rows.append
    graphs = ingest.graphs
    with _open_binary(path, progress=progress, desc=f"reading {path.name}") as handle:
        quads = ox.parse(handle, ox_format, base_iri=path.resolve().as_uri())
        try:
            for s, p, o, g in quads:
                pk = str(p)
                if type(g) is not default_graph:
                    graphs.add(str(g))
                r = plain.get(pk)
                if r is None:
                    if pk in labels and type(o) is literal_type:
                        ingest.label(str(s), pk, str(o), o.value, o.language)
                        continue
                    r = ingest.relation(pk)
                sk = str(s)
                h = ent.get(sk)
                if h is None:
                    h = ent[sk] = len(ent)
                ok = str(o)
                t = ent.get(ok)
                if t is None:
                    t = ent[ok] = len(ent)
                append(h)
                append(r)
                append(t)
        except SyntaxError as err:
            raise _oxigraph_error(err, path=path, fmt=fmt) from None


@contextlib.contextmanager
def _literal_normalisation_off() -> Iterator[None]:
    """Keep literal lexical forms as written (rdflib rewrites ``"1"^^xsd:boolean`` to ``"true"`` otherwise)."""
    import rdflib

    before = rdflib.NORMALIZE_LITERALS
    rdflib.NORMALIZE_LITERALS = False
    try:
        yield
    finally:
        rdflib.NORMALIZE_LITERALS = before


class _DropIllTypedLiteralNotes(logging.Filter):
    """Drops rdflib's per-term notes: "Failed to convert Literal lexical form" (a traceback for every ill-typed
    literal) and "... does not look like a valid URI" (one line per odd IRI, printed before any error of ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Failed to convert Literal lexical form")
            or message.endswith("does not look like a valid URI, trying to serialize this will break.")
        )


@contextlib.contextmanager
def _quiet_rdflib() -> Iterator[None]:
    """Silence rdflib's per-literal conversion notes while reading: kgreason keeps lexical forms as written, so
    an ill-typed literal (``"abc"^^xsd:integer``) is no problem, and a traceback in the output would suggest one."""
    import warnings

    term_log = logging.getLogger("rdflib.term")
    quiet = _DropIllTypedLiteralNotes()
    term_log.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Parsing weird boolean", category=UserWarning)
            yield
    finally:
        term_log.removeFilter(quiet)


def _rdflib_sink(ingest: _Ingest, bar: tqdm | None) -> Callable[[Any, Any, Any, Any], None]:
    """A callback ``(s, p, o, graph id)`` that converts rdflib terms to keys and feeds ``ingest``."""
    from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
    from rdflib.term import Literal

    term_key = rdflib_term_key
    count = 0

    def sink(s: Any, p: Any, o: Any, graph: Any) -> None:
        nonlocal count
        sk, pk = term_key(s), term_key(p)
        if graph is not None and graph != DATASET_DEFAULT_GRAPH_ID:
            ingest.graphs.add(str(graph))
        if pk in LABEL_PREDICATES and isinstance(o, Literal):
            ingest.label(sk, pk, term_key(o), str(o), o.language)
        else:
            ingest.add(sk, pk, term_key(o))
        count += 1
        if bar is not None and count % 10_000 == 0:
            bar.update(10_000)

    return sink


def _recording_store(sink: Callable[[Any, Any, Any, Any], None]) -> Any:
    """An rdflib store that hands every added statement to ``sink`` in parse order and keeps nothing."""
    from rdflib.graph import Graph
    from rdflib.plugins.stores.memory import Memory

    class RecordingStore(Memory):
        def add(self, triple: Any, context: Any, quoted: bool = False) -> None:
            if quoted:
                raise TypeError("N3 formulas ({ ... }) are not supported")
            graph = context.identifier if isinstance(context, Graph) else context
            sink(*triple, graph)

        def addN(self, quads: Any) -> None:
            for s, p, o, context in quads:
                self.add((s, p, o), context)

    return RecordingStore()


def _line_counting(base: type) -> type:
    """A subclass of an rdflib line parser that counts the lines it has read (for error positions)."""

    class LineCounting(base):  # type: ignore[misc, valid-type]
        lineno = 0

        def readline(self) -> str | None:
            line = super().readline()
            if line is not None:
                self.lineno += 1
            return line

    return LineCounting


def _read_with_rdflib(path: Path, *, fmt: str, ingest: _Ingest, progress: bool) -> None:
    """Parse ``path`` with rdflib, streaming each statement into ``ingest`` in the order rdflib emits them."""
    import rdflib
    from rdflib.parser import StringInputSource
    from rdflib.plugins.parsers.nquads import NQuadsParser
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    data = _read_all(path, progress=progress, desc=f"reading {path.name}")
    if not data.strip():
        raise KBFormatError("no triples", path=path, expected=f"at least one {FORMAT_TITLES[fmt]} statement")
    if fmt != "xml":  # RDF/XML may declare its own encoding
        _check_utf8(data, path=path)
    bar = None
    if progress and path.stat().st_size >= PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        bar = tqdm(unit=" statements", unit_scale=True, desc=f"parsing {path.name}", leave=False)
    sink = _rdflib_sink(ingest, bar)
    base = path.resolve().as_uri()
    parser: Any = None
    try:
        with _literal_normalisation_off(), _quiet_rdflib():
            if fmt == "nt":

                class TripleSink:
                    def triple(self, s: Any, p: Any, o: Any) -> None:
                        sink(s, p, o, None)

                parser = _line_counting(W3CNTriplesParser)(sink=TripleSink())
                parser.parse(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
            elif fmt == "nquads":
                parser = _line_counting(NQuadsParser)()
                parser.parse(StringInputSource(data), rdflib.Dataset(store=_recording_store(sink)))
            elif fmt == "xml":
                dataset = rdflib.Dataset(store=_recording_store(sink))
                _parse_rdfxml(data, graph=dataset.default_graph, base=base, path=path)
            else:
                if fmt == "json-ld":
                    _refuse_remote_contexts(data, path=path)
                dataset = rdflib.Dataset(store=_recording_store(sink))
                dataset.parse(data=data, format=fmt, publicID=base)
    except KBFormatError:
        raise
    except Exception as err:
        line = parser.lineno if parser is not None else None
        raise rdflib_error(err, path=path, fmt=fmt, data=data, line=line) from None
    finally:
        if bar is not None:
            bar.close()


def _refuse_remote_contexts(data: bytes, *, path: Path) -> None:
    """Raise :class:`KBFormatError` if a JSON-LD document's ``@context`` (or ``@import``) names another document.

    rdflib would fetch such a context (over the network, or from a file); kgreason never does while loading.
    Invalid JSON is left to the parser, which reports where.
    """
    import json

    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            found = None
            if key == "@context":
                found = next(
                    (c for c in (value if isinstance(value, list) else [value]) if isinstance(c, str)), None
                )
            elif key == "@import" and isinstance(value, str):
                found = f"@import {value!r}"
            if found is not None:
                shown = found if found.startswith("@import") else repr(found)
                raise KBFormatError(
                    f"@context {shown} refers to another document; kgreason never fetches documents while "
                    "loading a knowledge base",
                    path=path,
                    expected="an inline @context (a JSON object): paste the context into the file",
                )
            stack.append(value)


def _parse_rdfxml(data: bytes, *, graph: Any, base: str, path: Path) -> None:
    """rdflib's RDF/XML handler driven by a defusedxml parser (what ``Graph.parse(format="xml")`` does, defused).

    External entities and DTDs are refused, and so are entities that refer to other entities or are longer
    than :data:`MAX_XML_ENTITY_CHARS`, so the expanded document stays within a small multiple of the file.
    """
    from xml.sax import handler

    from defusedxml import DefusedXmlException
    from defusedxml.expatreader import DefusedExpatParser
    from rdflib.parser import create_input_source
    from rdflib.plugins.parsers.rdfxml import RDFXMLHandler

    refused: list[str] = []

    class BoundedParser(DefusedExpatParser):
        def defused_entity_decl(self, name, is_parameter_entity, value, base, sysid, pubid, notation_name):
            if sysid is not None or value is None:
                refused.append(f"entity {name!r} that refers to an external document {sysid!r}")
            elif is_parameter_entity:
                refused.append(f"parameter entity {name!r}")
            elif "&" in value:
                refused.append(
                    f"entity {name!r} whose value refers to other entities; such nested entities can expand "
                    "without bound ('billion laughs')"
                )
            elif len(value) > MAX_XML_ENTITY_CHARS:
                refused.append(
                    f"entity {name!r} with a {len(value):,}-character value (at most {MAX_XML_ENTITY_CHARS})"
                )
            else:
                return  # plain text: each reference expands once, boundedly
            super().defused_entity_decl(name, is_parameter_entity, value, base, sysid, pubid, notation_name)

        def defused_external_entity_ref_handler(self, context, base, sysid, pubid):
            refused.append(f"an external document {sysid!r}")
            super().defused_external_entity_ref_handler(context, base, sysid, pubid)

    parser = BoundedParser(forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.start_namespace_decl("xml", "http://www.w3.org/XML/1998/namespace")  # as rdflib's create_parser
    parser.setFeature(handler.feature_namespaces, 1)
    source = create_input_source(data=data, format="xml", publicID=base)
    content = RDFXMLHandler(graph)
    content.setDocumentLocator(source)  # type: ignore[arg-type]
    parser.setContentHandler(content)
    parser.setErrorHandler(handler.ErrorHandler())
    try:
        parser.parse(source)
    except DefusedXmlException:
        what = refused[-1] if refused else "a construct defusedxml forbids"
        raise KBFormatError(
            f"the XML declares {what}; kgreason refuses it (no documents are fetched and entity expansion "
            "stays bounded)",
            path=path,
            line=parser.getLineNumber(),
            expected=f"RDF/XML whose <!ENTITY> declarations, if any, hold plain text of at most "
            f"{MAX_XML_ENTITY_CHARS} characters",
        ) from None
    finally:
        source.close()


# ---------------------------------------------------------------------------------------------- public
def read_rdf(
    source: str | Path,
    *,
    format: str | None = None,
    name: str | None = None,
    progress: bool = True,
    parser: str = "auto",
) -> RDFLoad:
    """Read an RDF file into a :class:`TripleStore` and report what was found (see the module docstring).

    Args:
        source: the file (``.gz`` accepted).
        format: an rdflib format name (``turtle``, ``nt``, ``nquads``, ``xml``, ``json-ld``, ``n3``, ``trig``);
            detected from the extension when omitted.
        name: name of the store (default: the file name without extensions).
        progress: show a progress bar for files over 5 MB.
        parser: ``"auto"`` (pyoxigraph for N-Triples / Turtle / N-Quads, rdflib else), ``"pyoxigraph"``
            (only those three formats) or ``"rdflib"``.
    """
    started = time.perf_counter()
    path = Path(source)
    if parser not in PARSERS:
        raise ValueError(f"parser must be one of {PARSERS}, got {parser!r}")
    if not path.exists():
        raise FileNotFoundError(f"no such RDF file: {path}")
    require_regular_file(path)
    fmt = rdf_format(path, format)
    use = parser
    if use == "auto":
        use = "rdflib"
        if fmt in FAST_FORMATS:
            try:
                import pyoxigraph  # noqa: F401
            except ImportError:
                log.info("pyoxigraph is not installed; reading %s with rdflib (pip install pyoxigraph)", path)
            else:
                use = "pyoxigraph"
    elif use == "pyoxigraph" and fmt not in FAST_FORMATS:
        raise ValueError(f"the pyoxigraph path reads {', '.join(sorted(FAST_FORMATS))}, not {fmt}")
    if name is None:
        stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
        name = stem.split(".")[0] or stem
    ingest = _Ingest(builder=TripleStoreBuilder(name=name, key_kind="ntriples", source=str(path)))
    reader = _read_with_oxigraph if use == "pyoxigraph" else _read_with_rdflib
    reader(path, fmt=fmt, ingest=ingest, progress=progress)
    return ingest.finish(path=path, fmt=fmt, parser=use, started=started)


def load_rdf(
    source: str | Path,
    *,
    format: str | None = None,
    name: str | None = None,
    progress: bool = True,
    parser: str = "auto",
) -> TripleStore:
    """Load an RDF file (any rdflib format, ``.gz`` accepted) into a :class:`TripleStore`.

    Keys are canonical N-Triples terms (``key_kind="ntriples"``); ``rdfs:label`` / ``skos:prefLabel`` /
    ``skos:altLabel`` literals become labels and aliases. See :func:`read_rdf` for the arguments and the
    module docstring for the rules.
    """
    return read_rdf(source, format=format, name=name, progress=progress, parser=parser).store


# ---------------------------------------------------------------------------------------------- writing
def _entity_terms(kb: KnowledgeBase, *, base_iri: str) -> tuple[list[str], list[str]]:
    """N-Triples terms of every entity and relation: the keys of an RDF store, else minted IRIs."""
    n_ent, n_rel = kb.num_entities, kb.num_relations
    if getattr(kb, "key_kind", "plain") == "ntriples":
        ents = list(getattr(kb, "entity_keys", None) or (kb.entity_key(i) for i in range(n_ent)))
        rels = list(getattr(kb, "relation_keys", None) or (kb.relation_key(r) for r in range(n_rel)))
        return ents, rels
    ents = [iri_key(f"{base_iri}entity/{quote(kb.entity_key(i), safe='')}") for i in range(n_ent)]
    rels = [iri_key(f"{base_iri}relation/{quote(kb.relation_key(r), safe='')}") for r in range(n_rel)]
    return ents, rels


def _label_lines(kb: KnowledgeBase, ents: list[str]) -> Iterator[str]:
    """Label statements: the store's verbatim RDF annotations, then minted ones for the rest."""
    annotations = getattr(kb, "annotations", None) or []
    covered = set()
    for entity, predicate, literal in annotations:
        covered.add(entity)
        yield f"{ents[entity]} {predicate} {literal} .\n"
    labels = getattr(kb, "entity_labels", None)
    aliases = getattr(kb, "entity_aliases_map", None)
    if labels is None or aliases is None:  # a plug-in KB: ask it entity by entity
        labels = {i: kb.entity_label(i) for i in range(kb.num_entities) if kb.has_label(i)}
        aliases = {i: a for i in range(kb.num_entities) if (a := kb.entity_aliases(i))}
    for entity in sorted((set(labels) | set(aliases)) - covered):
        if entity in labels:
            yield f"{ents[entity]} {RDFS_LABEL} {quote_literal(labels[entity])} .\n"
        for alias in aliases.get(entity, ()):
            yield f"{ents[entity]} {SKOS_ALT_LABEL} {quote_literal(alias)} .\n"


def _ntriples_chunks(
    kb: KnowledgeBase, *, split: str | None, base_iri: str, chunk: int = 500_000
) -> Iterator[str]:
    """The KB as N-Triples text, in chunks of ``chunk`` triples (graph triples in id order, then labels)."""
    ents, rels = _entity_terms(kb, base_iri=base_iri)
    rows = kb.triples(split).numpy()  # (n, 3)
    is_literal = np.fromiter((key[0] == '"' for key in ents), dtype=bool, count=len(ents))  # (num_entities,)
    if rows.shape[0] and is_literal[rows[:, 0]].any():
        bad = ents[int(rows[is_literal[rows[:, 0]], 0][0])]
        raise ValueError(f"entity {bad} is a literal and cannot be the subject of an RDF triple")
    ent_arr = np.asarray(ents, dtype=object)  # (num_entities,)
    rel_arr = np.asarray(rels, dtype=object)  # (num_relations,)
    bar = None
    if rows.shape[0] > 4 * chunk:
        from tqdm import tqdm

        bar = tqdm(total=rows.shape[0], unit=" triples", unit_scale=True, desc="writing", leave=False)
    try:
        for start in range(0, rows.shape[0], chunk):
            block = rows[start : start + chunk]  # (b, 3)
            heads, relations, tails = ent_arr[block[:, 0]], rel_arr[block[:, 1]], ent_arr[block[:, 2]]
            yield "".join([f"{h} {r} {t} .\n" for h, r, t in zip(heads, relations, tails, strict=True)])
            if bar is not None:
                bar.update(block.shape[0])
    finally:
        if bar is not None:
            bar.close()
    yield "".join(_label_lines(kb, ents))


def write_rdf(
    kb: KnowledgeBase,
    path: str | Path,
    *,
    format: str | None = None,
    split: str | None = None,
    base_iri: str = "urn:kgreason:",
) -> Path:
    """Write a knowledge base as RDF, atomically; ``.gz`` paths are gzipped.

    A store read from RDF (``key_kind == "ntriples"``) is written with its keys as they are and its label
    statements verbatim. Other KBs get minted IRIs ``<{base_iri}entity/{percent-encoded key}>`` and
    ``<{base_iri}relation/...>``, ``rdfs:label`` for labels and ``skos:altLabel`` for aliases (relation
    labels are not written). ``split=None`` writes the triples of every split; label statements are written
    for every entity either way. N-Triples is formatted directly; other formats go through an rdflib graph.

    Args:
        kb: any knowledge base.
        path: the output file.
        format: an rdflib format name; detected from the extension when omitted.
        split: write only this split's triples.
        base_iri: prefix of minted IRIs for KBs with plain keys.
    """
    target = Path(path)
    fmt = rdf_format(target, format)
    chunks = _ntriples_chunks(kb, split=split, base_iri=base_iri)
    if fmt == "nt":
        with atomic_output(target) as handle:
            for text in chunks:
                handle.write(text.encode("utf-8"))
        return target
    import rdflib

    graph: Any = rdflib.Dataset() if fmt in ("nquads", "trig") else rdflib.Graph()  # triples -> default graph
    with _literal_normalisation_off(), _quiet_rdflib():
        graph.parse(data="".join(chunks), format="nt")
    payload = graph.serialize(format=fmt, encoding="utf-8")
    with atomic_output(target) as handle:
        handle.write(payload)
    return target
