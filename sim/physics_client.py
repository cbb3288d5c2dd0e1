"""A private PyBullet physics client that keeps PyBullet's C-level prints out of our output.

PyBullet's C code prints ``argv[0]=`` to fd 1 when a client is created and its build time to
fd 2 on import, past ``sys.stdout``/``sys.stderr``; in a pipe (training progress relayed by
``meta_train``, the demo's logs) those lines land in the middle of ours. ``sim/__init__`` imports
this module first, so that PyBullet's first import happens here, silenced.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_LIBC = ctypes.CDLL(None)


@contextmanager
def c_output_discarded(fds: tuple[int, ...] = (1,)) -> Iterator[None]:
    """Send what C code writes to the descriptors ``fds`` (default: stdout) inside the block to
    ``os.devnull``.

    Python's own ``sys.stdout``/``sys.stderr`` are flushed first so nothing of ours is lost; C stdio
    buffers are flushed inside the block, so the library's pending lines (fully buffered when the
    descriptor is a pipe or file) are discarded rather than printed later.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(devnull_fd, fd)
        yield
    finally:
        _LIBC.fflush(None)
        for fd, saved_fd in saved.items():
            os.dup2(saved_fd, fd)
            os.close(saved_fd)
        os.close(devnull_fd)


with c_output_discarded(fds=(1, 2)):  # PyBullet prints its build time to stderr when first imported
    import pybullet
    from pybullet_utils import bullet_client


def direct_client() -> bullet_client.BulletClient:
    """A new ``p.DIRECT`` client of its own (never the global default), created silently."""
    with c_output_discarded():
        return bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
