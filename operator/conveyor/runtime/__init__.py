"""The runtime: everything that reads the cluster or writes to it, one concern per module.

From the bottom up (an import-linter contract keeps this order):

- `kube`: the few API calls, behind the `KubeApi` Protocol; `metrics`; `store`: the
  objects of one resource and their index.
- `records`, `informer`: compact records of watched objects; list-and-watch into stores.
- `cache`: the stores, their indices and typed reads, and the operator's own writes
  not yet seen (overlays).
- `workqueue`: typed keys, priorities, delays and retries: the one way to wait.
  `events`: the event recorder.
- `admitter`: waiting lines, occupancy, reservations, admission passes, pod creates.
- `job_reconciler`, `recurring_reconciler`, `queue_status`: what each kind of key does.
- `watches`: the informers that fill the cache, by namespace.
- `controller`: changes become keys, keys go to their reconciler.
  `fake_kube`: an in-memory `KubeApi` for the controller's unit tests.
"""
