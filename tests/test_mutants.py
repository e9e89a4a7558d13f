"""The planted-bug catalogue (``make mutants``) still fits the code: every mutant applies."""

from __future__ import annotations

import pytest
from tools.mutants import load

MUTANTS = load()


def test_the_catalogue_is_not_empty() -> None:
    assert len(MUTANTS) >= 2


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_mutant_applies_to_the_code_as_it_is(mutant: object) -> None:
    from tools.mutants import Mutant

    assert isinstance(mutant, Mutant)
    assert mutant.problems() == []
