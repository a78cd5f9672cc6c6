"""Turning ``(head, relation, tail)`` triples into sentences with per-relation templates.

A template is a Python format string with the fields ``{head}`` and ``{tail}`` (and optionally ``{relation}``,
the relation's label): ``"{tail} is the mother of {head}."``. The template of a relation is, in order:

1. the ``templates`` mapping given to :meth:`Verbalizer.from_kb`, keyed by relation key; a key also matches a
   relation by its IRI without angle brackets or by its local name (``hasMother`` for
   ``<http://example.org/family#hasMother>``) when that name belongs to one relation only;
2. the KB's own ``relation_templates`` (a :class:`~kgreason.kb.store.TripleStore` attribute, keyed by id);
3. a template of standard RDF vocabulary (``rdf:type`` reads ``"{head} is a {tail}."``, see
   :data:`STANDARD_TEMPLATES`);
4. the default ``"{head} {relation} {tail}."``.

Template files are YAML: a mapping of relation key to template, either at the top level or under a
``templates:`` key beside other metadata (see ``knowledge/templates/``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kgreason.core.errors import KBFormatError
from kgreason.kb.base import as_triple_array

if TYPE_CHECKING:
    import torch

    from kgreason.kb.base import KnowledgeBase

DEFAULT_TEMPLATE = "{head} {relation} {tail}."
#: Templates of standard RDF vocabulary, used unless the KB or the caller gives one (keys in N-Triples form).
STANDARD_TEMPLATES = {
    "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>": "{head} is a {tail}.",
    "<http://www.w3.org/2000/01/rdf-schema#subClassOf>": "{head} is a kind of {tail}.",
    "<http://www.w3.org/2000/01/rdf-schema#subPropertyOf>": "{head} is a narrower relation than {tail}.",
    "<http://www.w3.org/2000/01/rdf-schema#seeAlso>": "See also {tail} for {head}.",
    "<http://www.w3.org/2002/07/owl#sameAs>": "{head} is the same as {tail}.",
    "<http://www.w3.org/2004/02/skos/core#broader>": "{head} is a narrower concept than {tail}.",
    "<http://www.w3.org/2004/02/skos/core#narrower>": "{head} is a broader concept than {tail}.",
    "<http://www.w3.org/2004/02/skos/core#related>": "{head} is related to {tail}.",
}
#: Fields a template must contain, and the ones it may contain.
REQUIRED_FIELDS = frozenset({"head", "tail"})
ALLOWED_FIELDS = frozenset({"head", "tail", "relation"})


def template_problem(template: object) -> str | None:
    """What is wrong with a template (``None`` when it is fine)."""
    if not isinstance(template, str):
        return f"a template must be a string, got {type(template).__name__}"
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:  # unbalanced braces
        return f"not a valid format string ({err}); write a literal brace as {{{{ or }}}}"
    if unknown := fields - ALLOWED_FIELDS:
        shown = ", ".join("{" + f + "}" for f in sorted(unknown))
        return f"unknown field(s) {shown}; a template may use {{head}}, {{tail}} and {{relation}}"
    if missing := REQUIRED_FIELDS - fields:
        shown = " and ".join("{" + f + "}" for f in sorted(missing))
        return f"the template {template!r} has no {shown}"
    return None


def _local_name(key: str) -> str:
    text = key[1:-1] if key.startswith("<") and key.endswith(">") else key
    for sep in ("#", "/", ":"):
        if sep in text.rstrip(sep):
            text = text.rstrip(sep).rsplit(sep, 1)[1]
            break
    return text


class Verbalizer:
    """Renders triples of a knowledge base as sentences, one template per relation.

    Build it with :meth:`from_kb`. ``unmatched`` lists the keys of given templates that matched no relation
    (a typo, or a template file written for a larger vocabulary).
    """

    def __init__(
        self, *, kb: KnowledgeBase, templates: Sequence[str], unmatched: tuple[str, ...] = ()
    ) -> None:
        if len(templates) != kb.num_relations:
            raise ValueError(f"need one template per relation ({kb.num_relations}), got {len(templates)}")
        self.kb = kb
        self.templates = list(templates)  # by relation id
        self.unmatched = unmatched
        self._labels: dict[int, str] = {}
        self._relation_labels: list[str | None] = [None] * kb.num_relations

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, *, templates: Mapping[str, str] | None = None) -> Verbalizer:
        """A verbalizer for ``kb``; ``templates`` (relation key → template) override the KB's own.

        Raises:
            ValueError: a given template lacks ``{head}`` or ``{tail}`` or uses an unknown field.
        """
        chosen: list[str] = [
            STANDARD_TEMPLATES.get(kb.relation_key(r), DEFAULT_TEMPLATE) for r in range(kb.num_relations)
        ]
        own = getattr(kb, "relation_templates", None) or {}
        for relation, template in dict(own).items():
            if problem := template_problem(template):
                raise ValueError(f"{kb.name}: relation {kb.relation_key(relation)}: {problem}")
            chosen[int(relation)] = template
        unmatched: list[str] = []
        if templates:
            index = _relation_lookup(kb)
            for key, template in templates.items():
                if problem := template_problem(template):
                    raise ValueError(f"template for relation {key!r}: {problem}")
                relation = index.get(key)
                if relation is None:
                    unmatched.append(key)
                else:
                    chosen[relation] = template
        return cls(kb=kb, templates=chosen, unmatched=tuple(unmatched))

    @staticmethod
    def load_templates(path: str | Path) -> dict[str, str]:
        """Read a YAML template file (see the module docstring) into ``{relation key: template}``.

        Raises:
            KBFormatError: unreadable YAML, not a mapping of strings, or a template without ``{head}`` or
                ``{tail}``; the error names the file and line.
        """
        import yaml

        path = Path(path)
        try:
            root = yaml.compose(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            raise KBFormatError(
                f"not valid YAML: {err.problem}",
                path=path,
                line=None if mark is None else mark.line + 1,
                column=None if mark is None else mark.column + 1,
            ) from None
        expected = "a mapping of relation key to template with {head} and {tail}"
        if root is None:
            raise KBFormatError("the file is empty", path=path, expected=expected)
        if not isinstance(root, yaml.MappingNode):
            raise KBFormatError("the top level is not a mapping", path=path, line=1, expected=expected)
        node = root
        for key_node, value_node in root.value:
            if key_node.value == "templates" and isinstance(value_node, yaml.MappingNode):
                node = value_node
                break
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or not isinstance(value_node, yaml.ScalarNode):
                raise KBFormatError(
                    "each entry must be 'relation: template'", path=path, line=line, expected=expected
                )
            key = str(key_node.value)
            if key in out:
                raise KBFormatError(f"relation {key!r} is given twice", path=path, line=line)
            if problem := template_problem(value_node.value):
                raise KBFormatError(
                    f"relation {key!r}: {problem}",
                    path=path,
                    line=value_node.start_mark.line + 1,
                    expected="a template such as '{tail} is the mother of {head}.'",
                )
            out[key] = value_node.value
        return out

    def template(self, relation: int) -> str:
        """The template used for ``relation``."""
        return self.templates[relation]

    def _label(self, entity: int) -> str:
        label = self._labels.get(entity)
        if label is None:
            label = self._labels[entity] = self.kb.entity_label(entity)
        return label

    def _relation_label(self, relation: int) -> str:
        label = self._relation_labels[relation]
        if label is None:
            label = self._relation_labels[relation] = self.kb.relation_label(relation)
        return label

    def verbalize(self, triples: torch.Tensor | np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """One sentence per ``(head, relation, tail)`` row.

        Raises:
            IndexError: an entity or relation id is out of range.
        """
        rows = as_triple_array(triples)  # (n, 3)
        if rows.shape[0] == 0:
            return []
        lo, hi = rows.min(axis=0), rows.max(axis=0)  # (3,), (3,)
        if lo.min() < 0 or max(hi[0], hi[2]) >= self.kb.num_entities or hi[1] >= self.kb.num_relations:
            raise IndexError(
                f"triple ids out of range: entities must lie in [0, {self.kb.num_entities}) and relations in "
                f"[0, {self.kb.num_relations}); got heads/tails {min(lo[0], lo[2])}..{max(hi[0], hi[2])}, "
                f"relations {lo[1]}..{hi[1]}"
            )
        templates, label, relation_label = self.templates, self._label, self._relation_label
        return [
            templates[r].format(head=label(h), tail=label(t), relation=relation_label(r))
            for h, r, t in rows.tolist()
        ]


def _relation_lookup(kb: KnowledgeBase) -> dict[str, int]:
    """Relation id by key, by IRI without brackets, and by local name where that name is unique."""
    index: dict[str, int] = {}
    local: dict[str, list[int]] = {}
    for relation in range(kb.num_relations):
        key = kb.relation_key(relation)
        index[key] = relation
        if key.startswith("<") and key.endswith(">"):
            index.setdefault(key[1:-1], relation)
        local.setdefault(_local_name(key), []).append(relation)
    for name, relations in local.items():
        if len(relations) == 1:
            index.setdefault(name, relations[0])
    return index
