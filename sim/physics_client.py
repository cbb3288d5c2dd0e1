"""A private PyBullet physics client that keeps PyBullet's C-level prints out of our output.

PyBullet's C code prints ``argv[0]=`` when a client is created (and its build time on import)
straight to file descriptor 1, past ``sys.stdout``; in a pipe (training progress relayed by
``meta_train``, the demo's logs) those lines land in the middle of ours.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pybullet
from pybullet_utils import bullet_client

_LIBC = ctypes.CDLL(None)


@contextmanager
def c_stdout_discarded() -> Iterator[None]:
    """Send what C code writes to fd 1 inside the block to ``os.devnull``.

    Python's own ``sys.stdout`` is flushed first so nothing of ours is lost; C stdio buffers are
    flushed inside the block, so the library's pending lines (written with a full buffer when fd 1
    is a pipe or file) are discarded rather than printed later.
    """
    sys.stdout.flush()
    saved_fd = os.dup(1)
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull_fd, 1)
        yield
    finally:
        _LIBC.fflush(None)
        os.dup2(saved_fd, 1)
        os.close(saved_fd)
        os.close(devnull_fd)


def direct_client() -> bullet_client.BulletClient:
    """A new ``p.DIRECT`` client of its own (never the global default), created silently."""
    with c_stdout_discarded():
        return bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
