"""KGE recipes as data: the one table of hyper-parameters, citations and expected numbers.

The table ships as ``knowledge/kge/recipes.yaml`` (package data ``kgreason.knowledge``). ``kgreason kge train``
(through :func:`kgreason.kge.train.default_config`) takes its per-model defaults (``default-<model>``) from it,
and ``benchmarks/kge.py`` its shared and kgreason-only configurations. A user's own YAML of the same layout adds
recipes: ``load_recipes(path)``, or ``recipe("my.yaml:name")``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kgreason.core.errors import ConfigError, LocatedError, RegistryError
from kgreason.core.registry import did_you_mean
from kgreason.core.resources import knowledge_path

if TYPE_CHECKING:
    from kgreason.kge.train import KGEConfig

METRICS = ("mrr", "hits_at_1", "hits_at_3", "hits_at_10")
BENCHMARK_ROLES = ("shared", "kgreason")


class RecipeError(LocatedError, ConfigError):
    """A recipe file is not valid YAML or not a valid recipe table (file, line, what was expected)."""


@dataclass(frozen=True, kw_only=True)
class Citation:
    """Where a recipe or a published number comes from."""

    paper: str
    repo: str | None = None
    where: str | None = None


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """A published filtered link-prediction result (both directions) on ``dataset``."""

    name: str
    citation: Citation
    short: str
    mrr: float
    hits_at_1: float | None = None
    hits_at_3: float | None = None
    hits_at_10: float | None = None

    @property
    def dataset(self) -> str:
        return self.name.split("/", 1)[0]

    def metrics(self) -> dict[str, float]:
        """The published numbers that are known (``mrr`` always)."""
        return {m: getattr(self, m) for m in METRICS if getattr(self, m) is not None}


@dataclass(frozen=True, kw_only=True)
class KGERecipe:
    """One training recipe: ``config`` holds the KGEConfig fields it sets (the rest keep KGEConfig's defaults)."""

    name: str
    config: Mapping[str, Any]
    citation: tuple[Citation, ...]
    description: str = ""
    dataset: str | None = None
    anchor: Anchor | None = None
    expected: Mapping[str, float] = field(default_factory=dict)
    benchmark: str | None = None
    label: str | None = None
    quick_epochs: int | None = None

    @property
    def model(self) -> str:
        return str(self.config["model"])

    def fields(self) -> dict[str, Any]:
        """The recipe's KGEConfig fields, in the file's order (a fresh dict)."""
        return dict(self.config)

    def to_config(self, **overrides: Any) -> KGEConfig:
        """The validated KGEConfig of this recipe with ``overrides`` (``None`` values ignored) applied."""
        from kgreason.kge.train import KGEConfig

        names = {f.name for f in dataclasses.fields(KGEConfig)}
        values = self.fields()
        for key, value in overrides.items():
            if key not in names:
                raise ConfigError(f"unknown KGE config field {key!r}.{did_you_mean(key, sorted(names))}")
            if value is not None:
                values[key] = value
        return KGEConfig(**values).validate()


@dataclass(frozen=True, kw_only=True)
class RecipeTable:
    """Anchors and recipes by name, in the file's order."""

    anchors: Mapping[str, Anchor]
    recipes: Mapping[str, KGERecipe]

    def names(self) -> list[str]:
        return list(self.recipes)

    def get(self, name: str) -> KGERecipe:
        """The recipe ``name``; an unknown name is a RegistryError with a did-you-mean."""
        try:
            return self.recipes[name]
        except KeyError:
            names = self.names()
            raise RegistryError(
                f"unknown KGE recipe {name!r}.{did_you_mean(name, names)} Known: {', '.join(names) or 'none'}"
            ) from None

    def benchmark(self, role: str) -> list[KGERecipe]:
        """The recipes of benchmarks/kge.py with ``role`` (``shared`` or ``kgreason``), in the file's order."""
        return [r for r in self.recipes.values() if r.benchmark == role]

    def merged(self, other: RecipeTable) -> RecipeTable:
        """This table with ``other``'s anchors and recipes added; a name in both is an error."""
        for kind, ours, theirs in (
            ("anchor", self.anchors, other.anchors),
            ("recipe", self.recipes, other.recipes),
        ):
            clash = sorted(set(ours) & set(theirs))
            if clash:
                raise ConfigError(f"KGE {kind} {clash[0]!r} is defined twice (expected unique names)")
        return RecipeTable(
            anchors={**self.anchors, **other.anchors}, recipes={**self.recipes, **other.recipes}
        )


# ------------------------------------------------------------------------------------------ parsing
class _Lines:
    """1-based line numbers of the keys of a composed YAML document: ``(section, name[, field])`` -> line."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        self._walk(node, ())

    def _walk(self, node: yaml.Node | None, path: tuple[str, ...]) -> None:
        if not isinstance(node, yaml.MappingNode) or len(path) > 3:
            return
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, str(key.value))
                self.lines.setdefault(here, key.start_mark.line + 1)
                self._walk(value, here)

    def at(self, *path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _load_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    try:
        data = yaml.safe_load(text)
        lines = _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or err
        raise RecipeError(
            f"invalid YAML: {problem}",
            path=source,
            line=mark.line + 1 if mark else None,
            expected="plain YAML (mappings, lists, strings, numbers; no !! tags)",
        ) from None
    except (ValueError, TypeError, RecursionError) as err:  # a date that does not exist, deep nesting
        raise RecipeError(
            f"invalid YAML value ({type(err).__name__})", path=source, expected="plain YAML"
        ) from None
    return data, lines


class _Parser:
    def __init__(self, source: str, lines: _Lines) -> None:
        self.source, self.lines = source, lines

    def fail(self, message: str, *path: str, expected: str | None = None) -> RecipeError:
        return RecipeError(message, path=self.source, line=self.lines.at(*path), expected=expected)

    def mapping(self, value: Any, what: str, *path: str) -> dict[str, Any]:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(f"{what} is {type(value).__name__}", *path, expected="a mapping with text keys")
        return value

    def keys(self, data: dict[str, Any], allowed: tuple[str, ...], what: str, *path: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r} in {what}.{did_you_mean(key, allowed)}",
                    *path,
                    key,
                    expected="one of " + ", ".join(allowed),
                )

    def text(self, value: Any, what: str, *path: str, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{what} is {value!r}", *path, expected="a non-empty string")
        return value

    def number(self, value: Any, what: str, *path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e6:
            raise self.fail(f"{what} is {value!r}", *path, expected="a non-negative number")
        return float(value)

    def citation(self, value: Any, *path: str) -> Citation:
        data = self.mapping(value, "a citation", *path)
        self.keys(data, ("paper", "repo", "where"), "a citation", *path)
        return Citation(
            paper=self.text(data.get("paper"), "citation paper", *path),
            repo=self.text(data.get("repo"), "citation repo", *path, optional=True),
            where=self.text(data.get("where"), "citation where", *path, optional=True),
        )

    def anchor(self, name: str, value: Any) -> Anchor:
        path = ("anchors", name)
        data = self.mapping(value, f"anchor {name!r}", *path)
        self.keys(data, (*METRICS, "citation", "short"), f"anchor {name!r}", *path)
        if "/" not in name:
            raise self.fail(f"anchor name {name!r}", *path, expected="<dataset>/<model>")
        if "mrr" not in data:
            raise self.fail(f"anchor {name!r} has no mrr", *path, expected="a published MRR")
        metrics = {m: self.number(data[m], m, *path, m) for m in METRICS if data.get(m) is not None}
        return Anchor(
            name=name,
            citation=self.citation(data.get("citation"), *path, "citation"),
            short=self.text(data.get("short", name), "short", *path, "short"),
            **metrics,
        )

    def recipe(self, name: str, value: Any, anchors: Mapping[str, Anchor]) -> KGERecipe:
        path = ("recipes", name)
        what = f"recipe {name!r}"
        data = self.mapping(value, what, *path)
        allowed = tuple(f.name for f in dataclasses.fields(KGERecipe) if f.name != "name")
        self.keys(data, allowed, what, *path)
        citations = data.get("citation")
        if not isinstance(citations, list) or not citations:
            raise self.fail(f"{what} has no citation", *path, "citation", expected="a list of {paper, repo}")
        anchor = self.text(data.get("anchor"), "anchor", *path, "anchor", optional=True)
        if anchor is not None and anchor not in anchors:
            raise self.fail(
                f"{what} names the unknown anchor {anchor!r}.{did_you_mean(anchor, list(anchors))}",
                *path,
                "anchor",
                expected="a key of anchors",
            )
        benchmark = self.text(data.get("benchmark"), "benchmark", *path, "benchmark", optional=True)
        if benchmark is not None and benchmark not in BENCHMARK_ROLES:
            raise self.fail(f"benchmark is {benchmark!r}", *path, "benchmark", expected="shared or kgreason")
        dataset = self.text(data.get("dataset"), "dataset", *path, "dataset", optional=True)
        if benchmark is not None and dataset is None:
            raise self.fail(
                f"{what} is a benchmark recipe without a dataset", *path, expected="dataset: <name>"
            )
        quick = data.get("quick_epochs")
        if quick is not None and (isinstance(quick, bool) or not isinstance(quick, int) or quick < 1):
            raise self.fail(f"quick_epochs is {quick!r}", *path, "quick_epochs", expected="an integer >= 1")
        expected = self.mapping(data.get("expected") or {}, "expected", *path, "expected")
        return KGERecipe(
            name=name,
            config=self.config(data.get("config"), *path, "config"),
            citation=tuple(self.citation(c, *path, "citation") for c in citations),
            description=self.text(data.get("description"), "description", *path, optional=True) or "",
            dataset=dataset,
            anchor=anchors[anchor] if anchor is not None else None,
            expected={k: self.number(v, k, *path, "expected", k) for k, v in expected.items()},
            benchmark=benchmark,
            label=self.text(data.get("label", name), "label", *path, "label"),
            quick_epochs=quick,
        )

    def config(self, value: Any, *path: str) -> dict[str, Any]:
        from kgreason.core.config import build_config
        from kgreason.kge.train import KGEConfig

        data = self.mapping(value, "config", *path)
        if "model" not in data:
            raise self.fail(
                "config has no model", *path, expected="model: transe, distmult, complex or rotate"
            )
        try:
            build_config(KGEConfig, data).validate()
        except (ConfigError, ValueError, TypeError) as err:
            key = next((k for k in data if repr(k) in str(err) or f"{k} " in str(err)), None)
            where = (*path, key) if key is not None else path
            raise self.fail(
                str(err).removeprefix("invalid KGE config: "), *where, expected="KGEConfig fields"
            ) from None
        return dict(data)


def parse_recipes(text: str, *, source: str = "<recipes>") -> RecipeTable:
    """The recipe table a YAML text holds; any problem is one :class:`RecipeError` naming ``source`` and line."""
    data, lines = _load_yaml(text, source)
    parser = _Parser(source, lines)
    if data is None:
        data = {}
    top = parser.mapping(data, "the recipe file")
    parser.keys(top, ("anchors", "recipes"), "the recipe file")
    anchors_in = parser.mapping(top.get("anchors") or {}, "anchors", "anchors")
    anchors = {name: parser.anchor(name, value) for name, value in anchors_in.items()}
    recipes_in = parser.mapping(top.get("recipes") or {}, "recipes", "recipes")
    recipes = {name: parser.recipe(name, value, anchors) for name, value in recipes_in.items()}
    return RecipeTable(anchors=anchors, recipes=recipes)


def read_recipes(path: str | Path) -> RecipeTable:
    """The recipe table of a YAML file (errors name the file and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RecipeError("not UTF-8 text", path=path, expected="a UTF-8 YAML file") from None
    except OSError as err:
        raise RecipeError(
            err.strerror or "cannot be read", path=path, expected="a readable YAML file"
        ) from None
    return parse_recipes(text, source=str(path))


@lru_cache(maxsize=1)
def _packaged() -> RecipeTable:
    return read_recipes(knowledge_path("kge", "recipes.yaml"))


def load_recipes(*paths: str | Path) -> RecipeTable:
    """The packaged table, with the recipes of the user's ``paths`` added."""
    table = _packaged()
    for path in paths:
        table = table.merged(read_recipes(path))
    return table


def recipe(name: str) -> KGERecipe:
    """A recipe by name: a packaged one, or ``file.yaml:name`` from a user's file (``file.yaml`` alone when it
    holds exactly one recipe)."""
    file, sep, inner = name.rpartition(":")
    if sep and file.endswith((".yaml", ".yml")):
        return load_recipes(file).get(inner)
    if name.endswith((".yaml", ".yml")):
        own = read_recipes(name)
        if len(own.recipes) != 1:
            raise ConfigError(
                f"{name}: holds {len(own.recipes)} recipes (expected one, or pick one with {name}:<recipe>)"
            )
        return next(iter(own.recipes.values()))
    return load_recipes().get(name)


def default_recipe_name(model: str) -> str:
    """The name of the per-model default recipe of ``kgreason kge train``."""
    return f"default-{model}"


__all__ = [
    "Anchor",
    "Citation",
    "KGERecipe",
    "RecipeError",
    "RecipeTable",
    "default_recipe_name",
    "load_recipes",
    "parse_recipes",
    "read_recipes",
    "recipe",
]
