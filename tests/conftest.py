"""Shared pytest configuration: the real-cluster fixtures live in tests/cluster/fixtures.py."""

pytest_plugins = ["tests.cluster.fixtures"]
