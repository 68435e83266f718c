"""The Registry class: names, aliases, duplicates, parameters, building with paths."""

from __future__ import annotations

import pytest

from kspec import registry
from kspec.errors import SpecError
from kspec.registry import Registry


@pytest.fixture
def colours():
    reg = Registry("colour")

    @reg.register("red", aliases=("rouge",), description="the colour red")
    def red(alpha: float = 1.0):
        return ("red", alpha)

    return reg


def test_lookup_by_name_and_alias(colours):
    assert colours.get("red") is colours.get("rouge")
    assert "rouge" in colours and "blue" not in colours
    assert colours.names() == ["red"] and colours.names(aliases=True) == ["red", "rouge"]


def test_duplicates_are_refused_unless_replaced(colours):
    with pytest.raises(ValueError, match="already registered"):
        colours.register("rouge", lambda: None)
    colours.register("red", lambda: "new", replace=True)
    assert colours.build("red", "x") == "new"
    assert "rouge" not in colours  # the replaced entry's aliases went with it


def test_unknown_name_lists_valid_and_suggests(colours):
    with pytest.raises(SpecError) as info:
        colours.get("rde", "paint.colour")
    assert str(info.value) == (
        "paint.colour: unknown colour 'rde'; did you mean 'red'? (expected one of: red, rouge)"
    )


def test_parameters_checked_against_the_factory_signature(colours):
    assert colours.build({"type": "red", "alpha": 0.5}, "c") == ("red", 0.5)
    with pytest.raises(SpecError) as info:
        colours.build({"type": "red", "alpah": 0.5}, "c")
    assert info.value.path == "c.alpah" and info.value.hint == "alpha"
    with pytest.raises(SpecError, match="needs a 'type' key"):
        colours.build({"alpha": 1}, "c")
    with pytest.raises(SpecError, match="must be a name or a mapping"):
        colours.build(3, "c")


def test_factory_errors_come_back_with_the_path():
    reg = Registry("thing")
    reg.register("bad", lambda size=1: (_ for _ in ()).throw(ValueError(f"size {size} < 2")))
    with pytest.raises(SpecError) as info:
        reg.build({"type": "bad", "size": 1}, "model.thing")
    assert info.value.path == "model.thing" and "size 1 < 2" in str(info.value)


@pytest.mark.parametrize("name", list(registry.ALL))
def test_builtin_registries_are_populated_and_documented(name):
    registry.load_builtins()
    reg = registry.ALL[name]
    assert len(reg) > 0
    for entry in reg.entries():
        assert entry.description, f"{name}/{entry.name} has no description"
