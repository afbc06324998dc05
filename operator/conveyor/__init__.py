"""Conveyor: background jobs on Kubernetes, one pod per attempt, admitted by queues."""

__version__ = "0.1.0"
