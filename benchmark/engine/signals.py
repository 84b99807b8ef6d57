"""SIGTERM (a timeout, a cancelled cluster job, ``kill``) is handled like Ctrl-C.

Inside :func:`terminate_as_interrupt` a SIGTERM raises :class:`Terminated`, a
``KeyboardInterrupt``, so the loop marks the run ``interrupted`` (resumable) instead of dying
with its manifest still saying ``running``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        raise Terminated(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
