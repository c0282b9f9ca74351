"""The simulation wing: circuits compiled to programs of Pauli rotations, and the engines that give energies and
exact gradients for batches of parameter vectors.

``program`` (compilation, affine angles), ``engines`` (choosing and building an engine, BLAS threads),
``statevector`` and ``dense`` (the numpy engine and its small-circuit kernel), ``aer`` (Qiskit Aer),
``lockstep`` (several optimiser restarts sharing one batched engine call).
"""

from .engines import blas_threads, make_engine, resolve_engine
from .program import AngleError, Program, affine_form, compile_circuit

__all__ = ["AngleError", "Program", "affine_form", "blas_threads", "compile_circuit", "make_engine",
           "resolve_engine"]
