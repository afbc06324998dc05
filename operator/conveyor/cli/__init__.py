"""`kubectl conveyor`: a kubectl plugin to look at queues and jobs and act on them.

Installed with the package as the console script `kubectl-conveyor`, which
kubectl finds on PATH. `main` parses kubectl's flags and runs a command;
`format` turns the summaries of `core.summary` into what it prints; the API
calls are `client.operations`, with the caller's own kubeconfig.
"""
