"""Rules: a typed Horn-clause language, vectorised forward chaining, kinship rules and label constraints."""

from kgreason.rules.chaining import (
    Closure,
    Firing,
    Materialization,
    RuleEvaluationError,
    Violation,
    forward_chain,
    materialize,
)
from kgreason.rules.constraints import (
    LabelConstraints,
    LabelMasks,
    constrained_predictions,
    denial_truth,
    implication_truth,
    soft_constraint_loss,
    violation_rate,
)
from kgreason.rules.kinship import (
    KINSHIP_LABELS,
    STORY_RELATIONS,
    answer,
    answers,
    derived_labels,
    facts_from_triples,
    kinship_rules,
)
from kgreason.rules.language import Atom, Rule, RuleSet, RuleSyntaxError, Variable, load_rules, parse_rules
from kgreason.rules.worlds import World, example_worlds, resolve_rules

__all__ = [
    "KINSHIP_LABELS",
    "STORY_RELATIONS",
    "Atom",
    "Closure",
    "Firing",
    "LabelConstraints",
    "LabelMasks",
    "Materialization",
    "Rule",
    "RuleEvaluationError",
    "RuleSet",
    "RuleSyntaxError",
    "Variable",
    "Violation",
    "World",
    "answer",
    "answers",
    "constrained_predictions",
    "denial_truth",
    "derived_labels",
    "example_worlds",
    "facts_from_triples",
    "forward_chain",
    "implication_truth",
    "kinship_rules",
    "load_rules",
    "materialize",
    "parse_rules",
    "resolve_rules",
    "soft_constraint_loss",
    "violation_rate",
]
