"""Hostile YAML: every attack is refused before anything expands it, with one clear line.

Before the bounded reader, deep nesting and recursive aliases raised RecursionError, a
"billion laughs" ran for over a minute, non-UTF-8 files raised UnicodeDecodeError and a
5,000-digit integer a ValueError. The timeouts below turn a regression into a failure
instead of a hang.
"""

from __future__ import annotations

import codecs

import pytest

import kspec
from kspec.cli import main
from kspec.errors import SpecError
from kspec.spec.yaml_reader import DEFAULT_MAX_BYTES, MAX_BYTES_ENV

SPEC = """\
kspec: 1
name: hostile
model:
  inputs: [{name: x, shape: [4]}]
  layers:
    - &hidden {type: dense, units: 8, activation: relu}
    - {type: dense, units: 1}
training: {loss: mse}
"""


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


ATTACKS = {
    "deep nesting": ("description: " + "[" * 400 + "]" * 400 + "\n" + SPEC,
                     "nested more than 64 levels deep"),
    "recursive alias": ("description: &r [*r]\n" + SPEC, "recursive alias"),
    "billion laughs": (_laughs() + SPEC, "aliases expand the spec beyond"),
    "5000-digit integer": (SPEC.replace("units: 8", "units: " + "9" * 5000),
                           "an integer of 5000 digits is too large"),
    "recursive merge": ("description: &m {<<: *m}\n" + SPEC, "recursive alias"),
}


def _one_line_error(source) -> SpecError:
    with pytest.raises(SpecError) as info:
        kspec.load_spec(source)
    assert "\n" not in str(info.value), str(info.value)
    return info.value


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_yaml_attacks_are_refused_in_one_line(tmp_path, name):
    text, words = ATTACKS[name]
    path = tmp_path / "attack.yaml"
    path.write_text(text)
    for source in (path, text):
        error = _one_line_error(source)
        assert words in str(error) and "line " in str(error)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value, words", [
    ("&a [*a]", "recursive alias"),
    ("9" * 5000, "an integer of 5000 digits is too large"),
    (_laughs().replace("\n", ", ").join("{}"), "aliases expand the spec beyond"),
])
def test_set_overrides_are_read_within_the_same_bounds(value, words):
    error = _one_line_error_with(SPEC, [f"description={value}"])
    assert words in str(error)


def _one_line_error_with(source, overrides) -> SpecError:
    with pytest.raises(SpecError) as info:
        kspec.load_spec(source, overrides)
    assert "\n" not in str(info.value), str(info.value)
    return info.value


@pytest.mark.timeout(10)
@pytest.mark.parametrize("content, words", [
    (SPEC.encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
    (codecs.BOM_UTF32_LE + SPEC.encode("utf-32-le"), "UTF-32"),
    (SPEC.encode("utf-16-le"), "a NUL character at offset 1"),  # no BOM
    (bytes(range(256)) * 4, "not UTF-8 text: byte 0x80 at offset 128 (line 2)"),
    (SPEC.encode() + b"\n# caf\xe9\n", "byte 0xe9 at offset"),
])
def test_files_that_are_not_utf8_are_refused_with_the_offset(tmp_path, content, words):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    assert words in str(_one_line_error(path))


def test_a_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(codecs.BOM_UTF8 + SPEC.encode())
    assert kspec.load_spec(path).name == "hostile"


@pytest.mark.timeout(10)
def test_files_beyond_the_size_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:  # 50 MB without writing them: the size is read, not the bytes
        f.truncate(50_000_000)
    error = _one_line_error(path)
    assert f"the file is 50,000,000 bytes; a spec may have {DEFAULT_MAX_BYTES:,}" in str(error)
    assert MAX_BYTES_ENV in str(error)
    small = tmp_path / "spec.yaml"
    small.write_text(SPEC + "description: " + "x" * 2000 + "\n")
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    assert "a spec may have 1,000" in str(_one_line_error(small))
    monkeypatch.setenv(MAX_BYTES_ENV, "100000")
    assert kspec.load_spec(small).name == "hostile"
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    assert "must be a positive number of bytes" in str(_one_line_error(small))


def test_merge_keys_are_plain_yaml(tmp_path):
    text = SPEC.replace("    - {type: dense, units: 1}",
                        "    - {<<: *hidden, units: 1, activation: sigmoid}")
    spec = kspec.load_spec(text)
    first, last = spec.model.layers
    assert (first.units, first.activation) == (8, "relu")
    assert (last.type, last.units, last.activation) == ("dense", 1, "sigmoid")
    # Keys beside a merge override it, but a key written twice is still refused.
    with pytest.raises(SpecError, match="duplicate key 'units'"):
        kspec.load_spec(text.replace("units: 1,", "units: 1, units: 2,"))


def test_aliased_values_are_independent_copies():
    """An override of one aliased place must not change the others."""
    text = SPEC.replace("    - {type: dense, units: 1}", "    - *hidden")
    spec = kspec.load_spec(text, {"model.layers[1].units": 1})
    assert [layer.units for layer in spec.model.layers] == [8, 1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("make, path, words", [
    (lambda: _nest(400), "description[0][0][0][0][0]...", "nested more than 64 levels"),
    (lambda: _recursive(), "description[0]", "contains itself"),
    (lambda: _shared(9, 9), "description", "shared parts"),
    (lambda: 10**5000, "description", "an integer of about 5001 digits is too large"),
])
def test_dict_specs_are_bounded_too(make, path, words):
    raw = kspec.load_spec(SPEC).to_dict()
    raw["description"] = make()
    error = _one_line_error(raw)
    assert error.errors[0].path.startswith(path) and words in str(error)


def _nest(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _recursive():
    value: list = []
    value.append(value)
    return value


def _shared(levels, width):
    value: list = ["lol"]
    for _ in range(levels):
        value = [value] * width
    return value


def test_kspec_validate_prints_one_line_per_attack(tmp_path, capsys):
    paths = []
    for i, (text, _) in enumerate(ATTACKS.values()):
        paths.append(tmp_path / f"attack{i}.yaml")
        paths[-1].write_text(text)
    paths.append(tmp_path / "utf16.yaml")
    paths[-1].write_bytes(SPEC.encode("utf-16"))
    assert main(["validate", *map(str, paths)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == len(paths)
    assert all(line.startswith(str(p) + ": ") for line, p in zip(lines, paths))
