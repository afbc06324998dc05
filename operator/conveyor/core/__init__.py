"""The pure core: decisions over plain data; no kopf, no Kubernetes client, no clock."""
