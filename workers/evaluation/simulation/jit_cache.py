"""The ``kernel`` decorator of the compiled engine: numba's ``njit`` with an on-disk cache that cannot go stale.

numba's own cache is keyed by the timestamp of the file that defines a function, not of the files it calls: after
an edit of ``jit_rot.py`` alone, the cached ``jit.forward`` would keep the old rotation inlined. So every kernel is
cached under a directory named after a hash of all the kernel sources and the numba version:
``$QMIND_NUMBA_CACHE`` (default ``~/.cache/quantum-mind/numba``) ``/<hash>``; when that cannot be written, under the
temporary directory. Compiling every kernel costs 20-60 s on a busy 2-core machine; loading them from the cache
well under a second, in any process of the same user (forked workers included).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile

import numba

SOURCES = ("jit.py", "jit_rot.py", "jit_fixed.py", "jit_cache.py", "tape.py")
CACHE_ENV = "QMIND_NUMBA_CACHE"


def _digest() -> str:
    here = pathlib.Path(__file__).resolve().parent
    h = hashlib.sha256(numba.__version__.encode())
    for name in SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def _writable(path: pathlib.Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            return True
    except OSError:
        return False


def cache_dir() -> str:
    base = pathlib.Path(os.environ.get(CACHE_ENV) or pathlib.Path.home() / ".cache" / "quantum-mind" / "numba")
    path = base / _digest()
    if not _writable(path):
        path = pathlib.Path(tempfile.gettempdir()) / f"quantum-mind-numba-{os.getuid()}" / _digest()
        path.mkdir(parents=True, exist_ok=True)
    return str(path)


CACHE_DIR = cache_dir()


def kernel(fastmath=False):
    """``numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=...)`` caching under ``CACHE_DIR``."""

    def wrap(func):
        previous = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = CACHE_DIR  # read once, when the dispatcher picks its cache locator
        try:
            return numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=fastmath)(func)
        finally:
            numba.config.CACHE_DIR = previous

    return wrap
