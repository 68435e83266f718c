"""Fuzzing: whatever a spec holds, kspec answers with a Spec, a model or a SpecError.

Seeded mutations of the example specs (tests/helpers/fuzz.py) go through ``load_spec`` as
dicts and as damaged YAML text; a sample of those that validate is built. Anything else
(a TypeError, a RecursionError, an OverflowError from TensorFlow, a hang) fails the test
with the mutated spec that caused it.
"""

from __future__ import annotations

import random
import warnings

import pytest
import yaml

import kspec
from kspec.errors import SpecError
from kspec.spec import Spec
from tests.helpers.fuzz import ROOT, example_specs, mutate, mutate_text


def _outcome(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return kspec.load_spec(source)
        except SpecError as e:
            return e


def _raw_failures(results: list) -> list:
    return [(type(r).__name__, str(r)[:200], src) for r, src in results
            if not isinstance(r, (Spec, SpecError))]


@pytest.mark.timeout(120)
def test_mutated_specs_load_as_a_spec_or_a_spec_error():
    rng = random.Random(20261124)
    specs = example_specs()
    results = []
    for _ in range(3000):
        raw = mutate(rng.choice(specs), rng)
        try:
            results.append((_outcome(raw), raw))
        except Exception as e:  # noqa: BLE001 - collected and shown below
            results.append((e, raw))
    failures = _raw_failures(results)
    assert not failures, f"{len(failures)} raw errors, first: {failures[0]}"
    kinds = {type(r) for r, _ in results}
    assert Spec in kinds and any(issubclass(k, SpecError) for k in kinds)  # not degenerate


@pytest.mark.timeout(120)
def test_damaged_yaml_text_loads_as_a_spec_or_a_spec_error():
    rng = random.Random(7)
    texts = [p.read_text() for p in sorted((ROOT / "specs").glob("*.yaml"))]
    results = []
    for _ in range(600):
        text = mutate_text(rng.choice(texts), rng)
        try:
            results.append((_outcome(text), text))
        except Exception as e:  # noqa: BLE001 - collected and shown below
            results.append((e, text))
    failures = _raw_failures(results)
    assert not failures, f"{len(failures)} raw errors, first: {failures[0]}"
    errors = [r for r, _ in results if isinstance(r, SpecError)]
    assert errors
    for e in errors:  # one line per problem (with a heading line when there are several)
        lines = str(e).splitlines()
        assert len(lines) == (1 if len(e.errors) == 1 else len(e.errors) + 1), str(e)


@pytest.mark.timeout(300)
def test_a_sample_of_mutated_specs_that_validate_builds_or_fails_with_a_spec_error():
    from kspec.compiler.model import build_model

    rng = random.Random(11)
    specs = [s for s in example_specs() if "base" not in yaml.safe_dump(s.get("model"))]
    built, refused, failures = 0, 0, []
    while built + refused + len(failures) < 30:
        raw = mutate(rng.choice(specs), rng, under=("model", "seed"))
        spec = _outcome(raw)
        if not isinstance(spec, Spec):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_model(spec)
            built += 1
        except SpecError:
            refused += 1
        except Exception as e:  # noqa: BLE001 - collected and shown below
            failures.append((type(e).__name__, str(e)[:200], raw.get("model")))
    assert not failures, f"{len(failures)} raw errors, first: {failures[0]}"
    assert built and refused
