"""Which namespaces an operator serves: kopf's pattern syntax, one rule for operator and bench."""

from __future__ import annotations

import pytest

from conveyor.core import namespaces


@pytest.mark.parametrize(
    ("pattern", "served", "not_served"),
    [
        ("team-a", ["team-a"], ["team-b", "team-a-x"]),
        ("team-*", ["team-a", "team-"], ["teams", "kube-system"]),
        ("!kube-*", ["default", "team-a"], ["kube-system", "kube-public"]),
        ("team-*,!team-test", ["team-a"], ["team-test", "other"]),
        ("myapp-*, !*-pr-*, *pr-123", ["myapp-live", "myapp-pr-123"], ["myapp-pr-4", "x-pr-123"]),
        ("!*-pr-*, *pr-123", ["anything", "other-pr-123"], ["myapp-pr-4"]),
        ("t-?", ["t-1"], ["t-12"]),
    ],
)
def test_a_pattern_serves_what_kopf_would(
    pattern: str, served: list[str], not_served: list[str]
) -> None:
    for name in served:
        assert namespaces.matches(name, pattern), (name, pattern)
    for name in not_served:
        assert not namespaces.matches(name, pattern), (name, pattern)


def test_several_values_serve_what_any_of_them_serves_and_none_serves_all() -> None:
    assert namespaces.served("b", ["a", "b"])
    assert not namespaces.served("c", ["a", "b"])
    assert namespaces.served("anything", [])


def test_plain_names_are_not_patterns() -> None:
    assert not namespaces.is_pattern("team-a")
    assert all(namespaces.is_pattern(p) for p in ("team-*", "!kube", "a,b", "t-?", "[ab]"))
