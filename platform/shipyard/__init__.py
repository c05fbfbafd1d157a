"""Shipyard: a reference MLOps platform on Kubernetes, runnable embedded on one machine.

Import layout: ``settings`` (the one settings object), ``cli`` (the ``shipyard`` command),
``stack`` (the embedded local stack), ``observability`` (metric names, Prometheus config).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shipyard")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
