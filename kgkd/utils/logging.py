"""Library logging: kgkd logs under the 'kgkd' logger; the CLI turns it on."""

from __future__ import annotations

import logging
import sys


def get_logger(name: str) -> logging.Logger:
    """Return a child of the 'kgkd' logger (``get_logger(__name__)``)."""
    return logging.getLogger(name if name.startswith("kgkd") else f"kgkd.{name}")


class _CurrentStderrHandler(logging.StreamHandler):
    """A stderr handler that writes to whatever ``sys.stderr`` is *now*.

    A plain ``StreamHandler()`` keeps the stream it was created with; when that stream is
    swapped and closed (pytest's capture, notebooks), later records fail with "I/O operation
    on closed file".
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(verbosity: int = 0) -> None:
    """Route kgkd logs to stderr: 0 → INFO, ≥1 → DEBUG, <0 → WARNING."""
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    logger = logging.getLogger("kgkd")
    if not logger.handlers:
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)
