"""Do the Parameters do anything? A circuit whose energy does not depend on any Parameter is refused.

``verify.py`` refuses what can be seen in the angles (a coefficient 0, a Parameter only in the global phase).
This check catches what only a simulation shows: rotations that act trivially on the state they meet (``rz`` on
``|0>``, ``rzz`` on a computational basis state, a rotation undone by its inverse, one whose effect the
Hamiltonian cannot see). At ``points`` random parameter vectors (angles uniform modulo 2 pi) every exact
derivative ``dE/dtheta_k`` is computed; when all of them are zero to rounding at every point, the energy is a
constant function of the Parameters and the circuit is refused with a message that says so.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from .angles import angle_unit_gradients, sample_parameters
from .simulation.engines import blas_threads, make_engine

ROUNDING = 1e-9
"""A derivative (per unit angle) below this times sum |c_P| (identity excluded) counts as zero."""


def constant_energy_message(circuit: QuantumCircuit, hamiltonian: SparsePauliOp, *, points: int = 4,
                            seed: int = 0, engine: str | None = "auto") -> str | None:
    """A message when no Parameter changes the energy at any of ``points`` random points, else None.

    Raises ``EvaluationError`` when the circuit cannot be simulated (the caller's verification failed).
    """
    with blas_threads():
        sim = make_engine(circuit, hamiltonian, engine=engine)
        program = sim.program
        thetas = sample_parameters(program, np.random.default_rng([seed, 0x11FE]), points)
        _, grads = sim.energies_and_gradients(thetas)
    op = hamiltonian.simplify(atol=0)
    nonidentity = np.any(op.paulis.x | op.paulis.z, axis=1)
    scale = float(np.sum(np.abs(op.coeffs[nonidentity])))
    largest = float(np.max(np.abs(angle_unit_gradients(program, grads)))) if grads.size else 0.0
    if largest > ROUNDING * max(scale, 1e-300):
        return None
    return (f"no Parameter changes the energy: at {points} random parameter points every derivative dE/dtheta of "
            f"all {program.num_parameters} Parameter(s) is zero (largest {largest:.1e}, rounding "
            f"{ROUNDING * scale:.1e}); the rotations act trivially on the state they meet (e.g. rz or rzz on a "
            f"computational basis state, a rotation undone by its inverse): make the trainable gates change the "
            f"state")
