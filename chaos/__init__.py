"""`make chaos`: fault injection on the local cluster, with figures (see chaos/cli.py)."""
