"""tests/conftest.py loads the cluster fixtures (tests.cluster.fixtures) for every
test directory."""
