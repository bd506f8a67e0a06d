"""Observability: Prometheus metrics shared by the worker processes, nginx's access log and its tail, memory
accounting."""
