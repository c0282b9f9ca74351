"""The simulation wing: circuits compiled to programs of Pauli rotations, and the engines that give energies and
exact gradients for batches of parameter vectors.

``program`` (compilation, affine angles), ``engines`` (choosing and building an engine, BLAS threads),
``statevector`` (the default engine) over its kernels: ``tape``/``compiled``/``jit*`` (numba, the default),
``dense`` and ``block`` (numpy, the fallback without numba); ``aer`` (Qiskit Aer), ``lockstep`` (optimiser
restarts in threads sharing one batched engine call, where ``lbfgsb.py`` cannot drive SciPy's routine itself).
"""

from .engines import blas_threads, make_engine, resolve_engine
from .program import AngleError, Program, affine_form, compile_circuit

__all__ = ["AngleError", "Program", "affine_form", "blas_threads", "compile_circuit", "make_engine",
           "resolve_engine"]
