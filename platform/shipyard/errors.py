"""User-facing errors. Each carries one line that says what is wrong and what to do.

The CLI prints ``error: <message>`` and exits with ``exit_code``; no traceback reaches the user.
HTTP mapping of serving errors lives with the gateway, next to its routes.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """A failure the user can act on. Exit code 1."""

    exit_code = 1


class ConfigError(ShipyardError):
    """An invalid setting, flag or config file. Exit code 2 (usage error)."""

    exit_code = 2


class MissingDependencyError(ShipyardError):
    """A required program or package is not installed; the message says how to install it."""


class ComponentError(ShipyardError):
    """A component of the embedded stack could not start or stop; names its log file."""


class PortInUseError(ComponentError):
    """A port the stack needs is taken by another process."""


class StackNotRunningError(ShipyardError):
    """The embedded stack is not running. Exit code 3, as for an inactive service."""

    exit_code = 3
