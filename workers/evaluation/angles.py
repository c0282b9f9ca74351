"""Reparametrisation-invariant sampling and gradients: measure in the gate angles, not in the Parameters.

A compiled program has angles ``phi = A theta + b``. Multiplying a Parameter's coefficients by m (``m*theta``),
splitting it into a sum of Parameters or shifting it by a constant prepares exactly the same family of states,
but the raw derivatives ``dE/dtheta_k`` scale with the coefficients. Statistics that a verdict is based on are
therefore taken in angle units:

- **sampling**: ``theta_k = 2 pi u / c_k`` with ``u ~ U[0, 1)`` and ``c_k`` the smallest non-zero ``|A[j, k]|``, so
  every angle that depends on theta_k with coefficient ``c_k`` (or an integer multiple of it) is uniform modulo
  2 pi whatever the scale; multiplying the coefficients of theta_k by m gives identical angle samples;
- **gradients**: ``g_k = (dE/dtheta_k) / ||A[:, k]||``, the derivative along a unit step of the angles theta_k
  drives, so ``m*theta`` gives identical ``g_k``; a Parameter shared by occurrences with coefficients ``A[j, k]``
  is compared with the level a 2-design gives per occurrence (``Sum_j A[j, k]^2`` times it, before dividing).
"""

from __future__ import annotations

import numpy as np

from .simulation.program import Program


def parameter_scales(program: Program) -> tuple[np.ndarray, np.ndarray]:
    """(smallest non-zero |A[j, k]| per Parameter, ||A[:, k]|| per Parameter); 1 for a Parameter in no angle."""
    a = np.abs(program.coefficients)
    masked = np.where(a > 0, a, np.inf)
    smallest = masked.min(axis=0) if a.shape[0] else np.full(program.num_parameters, np.inf)
    smallest = np.where(np.isfinite(smallest), smallest, 1.0)
    norms = np.sqrt(np.sum(a * a, axis=0)) if a.shape[0] else np.zeros(program.num_parameters)
    return smallest, np.where(norms > 0, norms, 1.0)


def sample_parameters(program: Program, rng: np.random.Generator, samples: int) -> np.ndarray:
    """``samples`` parameter vectors whose angles are uniform modulo 2 pi, whatever the coefficients' scale."""
    smallest, _ = parameter_scales(program)
    return rng.uniform(0.0, 1.0, size=(samples, program.num_parameters)) * (2 * np.pi / smallest)


def angle_unit_gradients(program: Program, grads: np.ndarray) -> np.ndarray:
    """``dE/dtheta_k / ||A[:, k]||`` for a batch of gradients (B, num_parameters)."""
    _, norms = parameter_scales(program)
    return np.asarray(grads, dtype=float) / norms
