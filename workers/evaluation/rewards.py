"""Rewards, computed only from stored metrics (status, verification, BP and VQE results, the goal) and versioned.

Two rewards:

- ``seed_reward`` — the seed document's ``max(0, 1 - 10 * error)`` (error = VQE energy - exact energy, in the
  goal's energy unit), 0 for anything not ``valid``, not scored, or flagged.
- ``shaped_reward`` in [0, 1] — a weighted sum of four components, each in [0, 1]:

  ==============  ======  ==========================================================================================
  component       weight  value
  ==============  ======  ==========================================================================================
  validity        0.10    1 for a valid (verified) circuit; 0.25 for a circuit that was built but failed
                          verification; 0 when the code failed, timed out or hit a limit
  barren_plateau  0.20    1 when the barren-plateau check ran and did not flag the ansatz, else 0
  energy          0.60    ``clip(-log10(max(eps, 1e-6)) / 6, 0, 1)`` with the *normalised error*
                          ``eps = (E - E0) / (Tr(H)/2^n - E0)``: the error relative to the gap between the
                          maximally mixed state's energy and the ground energy, so molecules and lattices compare.
                          eps = 1e-3 gives 0.5, 1e-6 (or better) gives 1; 0 when VQE did not run
  gate_cost       0.10    ``1 - depth / (2 max_depth) - n2q / (2 max_depth floor(n/2))``: half for the depth
                          budget used, half for the share of the two-qubit gates that fit in max_depth layers
  ==============  ======  ==========================================================================================

  Components other than validity count only for ``valid`` candidates. A ``flagged`` candidate (energy below the
  exact ground energy: a bug or an exploit) gets 0 for everything.

Bump ``REWARD_VERSION`` whenever a formula or weight changes; it is stored beside every reward.
"""

from __future__ import annotations

import math

import numpy as np

from .goals import Goal
from .results import (
    STATUS_FLAGGED,
    STATUS_INVALID,
    STATUS_VALID,
    BarrenPlateauResult,
    RewardResult,
    VerificationResult,
    VQEResult,
)

REWARD_VERSION = "2026.11-1"
WEIGHTS: dict[str, float] = {"validity": 0.10, "barren_plateau": 0.20, "energy": 0.60, "gate_cost": 0.10}
INVALID_VALIDITY = 0.25
"""Validity credit for code that built a circuit which failed verification (it ran; the circuit was wrong)."""
ERROR_FLOOR = 1e-6
"""Normalised error at or below which the energy component is 1."""


def normalised_error(error: float, goal: Goal) -> float:
    """``error / (Tr(H)/2^n - E0)``: 0 at the ground energy, 1 at the maximally mixed state's energy."""
    identity = np.all(~(goal.hamiltonian.paulis.x | goal.hamiltonian.paulis.z), axis=1)
    mean_energy = float(np.real(np.sum(goal.hamiltonian.coeffs[identity])))
    spread = mean_energy - goal.exact_energy
    if not spread > 0:  # H proportional to the identity: every state is a ground state
        return 0.0
    return max(0.0, float(error)) / spread


def energy_component(eps: float) -> float:
    """``clip(-log10(max(eps, 1e-6)) / 6, 0, 1)``."""
    if not math.isfinite(eps):
        return 0.0
    return float(min(1.0, max(0.0, -math.log10(max(eps, ERROR_FLOOR)) / -math.log10(ERROR_FLOOR))))


def gate_cost_component(verification: VerificationResult, goal: Goal) -> float:
    """1 minus half the depth budget used minus half the two-qubit-gate budget used (both capped at 1)."""
    depth_used = min(1.0, verification.depth / goal.max_depth)
    capacity = goal.max_depth * max(1, goal.num_qubits // 2)
    two_used = min(1.0, verification.num_two_qubit_gates / capacity)
    return 1.0 - 0.5 * depth_used - 0.5 * two_used


def compute_rewards(status: str, verification: VerificationResult | None, bp: BarrenPlateauResult | None,
                    vqe: VQEResult | None, goal: Goal) -> RewardResult:
    """Both rewards and the shaped reward's components (see the module docstring)."""
    components = {name: 0.0 for name in WEIGHTS}
    flagged = status == STATUS_FLAGGED or (vqe is not None and vqe.below_exact)
    seed_reward = 0.0
    eps = None
    if flagged:
        pass
    elif status == STATUS_INVALID:
        components["validity"] = INVALID_VALIDITY
    elif status == STATUS_VALID:
        components["validity"] = 1.0
        if bp is not None and not bp.has_barren_plateau:
            components["barren_plateau"] = 1.0
        if vqe is not None and math.isfinite(vqe.error):
            eps = normalised_error(vqe.error, goal)
            components["energy"] = energy_component(eps)
            seed_reward = max(0.0, 1.0 - 10.0 * max(0.0, vqe.error))
        if verification is not None and verification.ok:
            components["gate_cost"] = gate_cost_component(verification, goal)
    shaped = sum(WEIGHTS[name] * value for name, value in components.items())
    details = dict(components)
    details["normalised_error"] = eps
    details["flagged"] = flagged
    return RewardResult(version=REWARD_VERSION, seed_reward=float(seed_reward),
                        shaped_reward=float(min(1.0, max(0.0, shaped))), components=details)
