"""The runtime: in-memory indices, the work queue, the one scheduler, and the API calls."""
