"""The KGE recipe table (knowledge/kge/recipes.yaml): it ships, every recipe builds, errors are located."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgreason.core.errors import ConfigError, KGReasonError, RegistryError
from kgreason.kge.models import MODELS
from kgreason.kge.recipes import (
    KGERecipe,
    RecipeError,
    default_recipe_name,
    load_recipes,
    parse_recipes,
    read_recipes,
    recipe,
)
from kgreason.kge.train import KGEConfig, default_config, model_defaults

TABLE = load_recipes()

# The per-model defaults as train.py's MODEL_DEFAULTS held them before they moved to the recipe table.
_FIELDS = ("dim", "batch_size", "lr", "negatives", "shared_negatives", "loss", "margin")
_FIELDS += ("adversarial_temperature", "reciprocal", "n3")
#: Run control of every `kge train` default: validate each epoch on 5,000 valid triples, patience 5, 10 minutes.
RUN_CONTROL = {"eval_every": 1, "patience": 5, "time_budget": 10, "valid_sample": 5000}
ROTATE_DEFAULTS = dict(zip(_FIELDS, (500, 1024, 1e-2, 1024, True, "nssa", 3.0, 1.0, False, 0.0), strict=True))
ROTATE_DEFAULTS |= RUN_CONTROL
DISTMULT_DEFAULTS = dict(zip(_FIELDS, (500, 512, 1e-2, 0, False, "ce", 0.0, 0.0, True, 1e-2), strict=True))
DISTMULT_DEFAULTS |= RUN_CONTROL
# benchmarks/kge.py's shared WN18RR configuration as it was written there.
WN18RR_SHARED = dict(
    model="rotate",
    dim=100,
    epochs=5,
    batch_size=1024,
    lr=0.005,
    negatives=32,
    loss="nssa",
    margin=3.0,
    adversarial_temperature=1.0,
    reciprocal=False,
    n3=0.0,
    shared_negatives=False,
)

OWN = """\
recipes:
  tiny-rotate:
    description: a small RotatE
    citation:
      - paper: "Sun et al. 2019"
    config:
      model: rotate
      dim: 8
      epochs: 1
      negatives: 4
"""


# ------------------------------------------------------------------------------------------ shipped table
def test_shipped_table_loads():
    assert {default_recipe_name(m) for m in MODELS} <= set(TABLE.names())
    assert [r.dataset for r in TABLE.benchmark("shared")] == ["nations", "umls", "kinship", "WN18RR"]
    assert [r.label for r in TABLE.benchmark("kgreason")] == [
        "kgreason, 1024 shared negatives",
        "kgreason ComplEx-N3 recipe",
    ]
    assert TABLE.anchors["WN18RR/rotate"].metrics()["mrr"] == pytest.approx(0.477)
    for r in TABLE.recipes.values():
        assert r.citation and all(c.paper for c in r.citation), r.name


@pytest.mark.parametrize("name", TABLE.names())
def test_every_recipe_builds_a_config(name: str):
    r = TABLE.get(name)
    config = r.to_config()
    assert isinstance(config, KGEConfig) and config.model == r.model in MODELS
    assert {k: getattr(config, k) for k in r.config} == dict(r.config)
    if r.anchor is not None:
        assert r.anchor.dataset == r.dataset
    assert r.to_config(seed=7, dim=None).seed == 7


def test_per_model_defaults_equal_what_train_used():
    assert model_defaults("rotate") == {"model": "rotate", **ROTATE_DEFAULTS}
    assert model_defaults(" DistMult ") == {"model": "distmult", **DISTMULT_DEFAULTS}
    rotate = default_config("rotate").to_dict()
    assert {k: rotate[k] for k in ROTATE_DEFAULTS} == ROTATE_DEFAULTS
    assert rotate["epochs"] == KGEConfig().epochs and rotate["seed"] == 0  # left at KGEConfig's defaults
    assert default_config("distmult", dim=16, n3=None).to_dict() == {
        **KGEConfig().to_dict(),
        **DISTMULT_DEFAULTS,
        "model": "distmult",
        "dim": 16,
    }
    from kgreason.kge import train

    assert train.MODEL_DEFAULTS["rotate"] == ROTATE_DEFAULTS  # the former name still answers
    fields = model_defaults("rotate")
    fields["dim"] = 1  # a fresh dict: the table is not changed
    assert model_defaults("rotate")["dim"] == 500


def test_benchmark_configurations_are_the_recipes():
    (wn18rr,) = [r for r in TABLE.benchmark("shared") if r.dataset == "WN18RR"]
    assert wn18rr.fields() == WN18RR_SHARED and wn18rr.quick_epochs == 1


# ------------------------------------------------------------------------------------------ errors
def test_bad_recipe_yaml_is_one_located_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(OWN.replace("dim: 8", "dim: 0"), encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        read_recipes(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line ") and "dim must be >= 1" in message and "\n" not in message
    assert info.value.path == str(path) and info.value.line == 8  # the line of `dim: 0`

    path.write_text(OWN.replace("      negatives: 4\n", "      negatives: [4\n"), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"bad\.yaml, line \d+: invalid YAML"):
        read_recipes(path)

    path.write_text(OWN.replace("description:", "descripton:"), encoding="utf-8")
    with pytest.raises(RecipeError, match=r"line 3: unknown key 'descripton'.*Did you mean 'description'"):
        read_recipes(path)


def test_a_users_own_recipe_file(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text(OWN, encoding="utf-8")
    own = recipe(f"{path}:tiny-rotate")
    assert isinstance(own, KGERecipe) and own.description == "a small RotatE"
    config = own.to_config(seed=3)
    assert (config.model, config.dim, config.epochs, config.negatives, config.seed) == ("rotate", 8, 1, 4, 3)
    assert config.batch_size == KGEConfig().batch_size
    assert recipe(str(path)) == own  # one recipe in the file: its name may be left out
    table = load_recipes(path)
    assert table.get("tiny-rotate") == own and table.get("default-rotate") == TABLE.get("default-rotate")

    path.write_text(OWN.replace("tiny-rotate", "default-rotate"), encoding="utf-8")
    with pytest.raises(ConfigError, match="'default-rotate' is defined twice"):
        load_recipes(path)


def test_unknown_recipe_name_suggests_one(tmp_path):
    with pytest.raises(
        RegistryError, match="unknown KGE recipe 'default-rotat'. Did you mean 'default-rotate'"
    ):
        recipe("default-rotat")
    path = tmp_path / "my.yaml"
    path.write_text(OWN, encoding="utf-8")
    with pytest.raises(RegistryError, match="Did you mean 'tiny-rotate'"):
        recipe(f"{path}:tiny-rotat")
    with pytest.raises(ConfigError, match="unknown KGE config field 'dims'. Did you mean 'dim'"):
        TABLE.get("default-rotate").to_config(dims=3)


# ------------------------------------------------------------------------------------------ property
_KEYS = st.sampled_from(
    [
        *("anchors", "recipes", "config", "citation", "paper", "model", "dim", "lr", "negatives", "loss"),
        *(
            "anchor",
            "benchmark",
            "dataset",
            "expected",
            "mrr",
            "quick_epochs",
            "label",
            "short",
            "WN18RR/rotate",
        ),
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**7),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["rotate", "complex", "ce", "nssa", "shared", "kgreason", "WN18RR/rotate"]),
)
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=16,
)
_YAMLISH = st.text(alphabet=st.sampled_from(list("ab:-{}[],'\"!&*|>?#\n %@`0.5e\t")), max_size=80)


def _only_recipe_errors(text: str) -> None:
    try:
        parse_recipes(text, source="fuzz.yaml")
    except RecipeError as err:
        assert "\n" not in str(err) and err.path == "fuzz.yaml"
    except KGReasonError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_YAMLISH)
def test_parser_raises_only_recipe_errors_on_yamlish_text(text: str):
    _only_recipe_errors(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TREES)
def test_parser_raises_only_recipe_errors_on_recipe_like_trees(tree: object):
    _only_recipe_errors(yaml.safe_dump(tree, allow_unicode=True))
