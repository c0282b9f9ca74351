"""Imported first by every benchmark script: put the repository root on sys.path and take this folder off it.

Run as a script, a benchmark's own folder comes first on sys.path, where ``benchmarks/queue.py`` would shadow the
standard library's ``queue`` (which torch, concurrent.futures and others import).
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
