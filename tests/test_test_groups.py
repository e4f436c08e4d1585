"""The quick run's list of long tests (tests/conftest.py SLOW) names tests that exist: a
renamed test would otherwise silently join the quick run."""

from __future__ import annotations

import importlib
import inspect

import pytest
from conftest import SLOW


@pytest.mark.parametrize("module", sorted(SLOW))
def test_every_slow_test_named_exists(module: str) -> None:
    tests = {name for name, value in inspect.getmembers(importlib.import_module(module)) if inspect.isfunction(value)}
    missing = sorted((SLOW[module] or frozenset()) - tests)
    assert not missing, f"{module} has no {missing}: update SLOW in tests/conftest.py"
