"""What a person's tools (`kubectl conveyor`, the dashboard) say to the API server.

Not the operator's adapter (`runtime.kube`): these calls act with the
caller's own identity (their kubeconfig, or the dashboard's ServiceAccount),
so Kubernetes RBAC decides what each person may read and do.
"""
