"""The registry of named rule sets: a config's ``rules:`` line names one of these or a ``.rules`` file.

A rule set is a zero-argument callable returning a :class:`~kgreason.rules.language.RuleSet`. Installed packages
add their own through the entry-point group ``kgreason.rule_sets``::

    [project.entry-points."kgreason.rule_sets"]
    my_domain = "my_pkg.rules:my_domain_rules"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kgreason.core.registry import Registry

if TYPE_CHECKING:
    from kgreason.rules.language import RuleSet

#: Registered rule sets (built-ins plus the ``kgreason.rule_sets`` entry points).
rule_sets: Registry[Callable[[], RuleSet]] = Registry(kind="rule set", entry_point_group="kgreason.rule_sets")

rule_sets.register("kinship", aliases=("kgreason.Kinship.v1",), obj="kgreason.rules.kinship:kinship_rules")
