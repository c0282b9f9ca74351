"""Rewards, computed only from stored metrics (status, verification, BP and VQE results, the goal) and versioned.

The error every energy reward uses is normalised **per goal**, against the best product state:

    eps = (E - E0) / (E_ref - E0)

E0 the exact ground energy, E_ref the lowest product-state energy (``reference.product_state_energy``: every
computational basis state and a local search over Bloch angles; for a molecule at or below its Hartree-Fock
determinant). eps = 0 is exact, eps = 1 is no better than the best unentangled state (the HF level for molecules),
eps > 1 worse than that. ``1 - eps`` is the fraction of the correlation energy (beyond the best product state)
recovered, a quantity that compares across goals: GRPO batches mix goals.

- ``seed_reward = max(0, 1 - eps)`` for ``valid`` candidates with a VQE result; 0 for anything else, and for
  ``flagged`` ones. It keeps the seed's shape ``max(0, 1 - k * error)``, with the error in units of the goal's
  own correlation energy instead of Hartree (k = 1: with k = 10 anything that recovers less than 90 % of the
  correlation energy would earn nothing). The HF determinant plus a useless parameter earns 0 on h2 and lih; an
  exact circuit 1; a tfim-8 circuit at 1.5 % relative error about 0.4.
- ``seed_reward_literal``: the seed document's formula as written, ``max(0, 1 - 10 * (E - E0))`` in the goal's
  energy unit, stored beside it for comparison (docs/scoring.md). Not used for training.
- ``shaped_reward`` in [0, 1]::

      0.10 validity + 0.60 energy + progress * (0.20 barren_plateau + 0.10 gate_cost)

  ==============  ======  ==========================================================================================
  component       weight  value
  ==============  ======  ==========================================================================================
  validity        0.10    1 for a valid (verified) circuit; 0.25 for a circuit that was built but failed
                          verification; 0 when the code failed, timed out or hit a limit
  energy          0.60    ``clip(-log10(max(eps, 1e-6)) / 6, 0, 1)``: 0 at the product-state level or worse, 0.5 at
                          eps = 1e-3, 1 at eps <= 1e-6; 0 when VQE did not run
  barren_plateau  0.20    1 when the check ran and its verdict is "no barren plateau"; 0 for "barren plateau" and
                          for "not measurable"
  gate_cost       0.10    ``1 - depth / (2 max_depth) - n2q / (2 max_depth floor(n/2))``
  ==============  ======  ==========================================================================================

  ``progress = clip(1 - eps, 0, 1)`` (0 without a VQE result) scales the barren-plateau and gate-cost credit, so a
  state at the product-state (HF) level earns 0.10 whatever its depth, and every circuit that goes beyond it
  earns more. A ``flagged`` candidate (energy below the exact ground energy) gets 0 for everything.

  Goals whose hardware options set ``reward: true`` add a fifth component, ``hardware`` (weight 0.20, taken from
  energy, which drops to 0.40): ``energy_component`` of the normalised error of the *noisy* energy (the hardware
  stage's shot estimate under the device's noise model, at the VQE's best parameters; see ``hardware.py``), 0 when
  it was not measured. Off by default: other goals are paid exactly as above.

Bump ``REWARD_VERSION`` whenever a formula or weight changes; it is stored beside every reward.
"""

from __future__ import annotations

import math

import numpy as np

from .goals import Goal
from .reference import product_state_energy
from .results import (
    STATUS_FLAGGED,
    STATUS_INVALID,
    STATUS_VALID,
    BarrenPlateauResult,
    HardwareResult,
    RewardResult,
    VerificationResult,
    VQEResult,
)

REWARD_VERSION = "2026.12-1"
WEIGHTS: dict[str, float] = {"validity": 0.10, "barren_plateau": 0.20, "energy": 0.60, "gate_cost": 0.10}
HARDWARE_WEIGHTS: dict[str, float] = {"validity": 0.10, "barren_plateau": 0.20, "energy": 0.40, "gate_cost": 0.10,
                                      "hardware": 0.20}
"""Weights for goals whose hardware options turn the hardware reward on."""
INVALID_VALIDITY = 0.25
"""Validity credit for code that built a circuit which failed verification (it ran; the circuit was wrong)."""
ERROR_FLOOR = 1e-6
"""Normalised error at or below which the energy component is 1."""
LITERAL_FACTOR = 10.0
"""The seed document's ``max(0, 1 - 10 * error)``."""


def reference_gap(goal: Goal) -> float:
    """``E_ref - E0``: how far the best product state is above the ground energy (> 0).

    When a product state is (numerically) exact, a floor of 1e-6 times the spread ``Tr(H)/2^n - E0`` keeps the
    ratio finite: then only (near) exact circuits earn the energy rewards.
    """
    identity = np.all(~(goal.hamiltonian.paulis.x | goal.hamiltonian.paulis.z), axis=1)
    spread = float(np.real(np.sum(goal.hamiltonian.coeffs[identity]))) - goal.exact_energy
    gap = product_state_energy(goal.hamiltonian) - goal.exact_energy
    return max(gap, 1e-6 * max(spread, 1e-12))


def normalised_error(error: float, goal: Goal) -> float:
    """``eps = error / (E_ref - E0)``: 0 at the ground energy, 1 at the best product state's energy."""
    if not math.isfinite(error):
        return math.inf
    return max(0.0, float(error)) / reference_gap(goal)


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


def bp_free(bp: BarrenPlateauResult | None) -> bool:
    """True only for a check that ran and measured "no barren plateau" (not for "not measurable")."""
    return bp is not None and not bp.has_barren_plateau and getattr(bp, "verdict", "") != "not measurable"


def compute_rewards(status: str, verification: VerificationResult | None, bp: BarrenPlateauResult | None,
                    vqe: VQEResult | None, goal: Goal, *, hardware: HardwareResult | None = None,
                    energy_goal: Goal | None = None) -> RewardResult:
    """Both rewards, the literal seed formula and the shaped reward's components (see the module docstring).
    ``energy_goal`` (default ``goal``) is the goal whose Hamiltonian normalises the VQE error: a goal set's worst
    member."""
    weights = HARDWARE_WEIGHTS if goal.hardware is not None and goal.hardware.reward else WEIGHTS
    components = {name: 0.0 for name in weights}
    flagged = status == STATUS_FLAGGED or (vqe is not None and vqe.below_exact)
    seed_reward = literal = progress = 0.0
    eps = None
    if flagged:
        pass
    elif status == STATUS_INVALID:
        components["validity"] = INVALID_VALIDITY
    elif status == STATUS_VALID:
        components["validity"] = 1.0
        components["barren_plateau"] = 1.0 if bp_free(bp) else 0.0
        if vqe is not None and math.isfinite(vqe.error):
            eps = normalised_error(vqe.error, energy_goal or goal)
            components["energy"] = energy_component(eps)
            progress = min(1.0, max(0.0, 1.0 - eps))
            seed_reward = progress
            literal = max(0.0, 1.0 - LITERAL_FACTOR * max(0.0, vqe.error))
        if verification is not None and verification.ok:
            components["gate_cost"] = gate_cost_component(verification, goal)
        if "hardware" in weights and hardware is not None and hardware.noisy_error is not None:
            components["hardware"] = energy_component(normalised_error(hardware.noisy_error, goal))
    shaped = (weights["validity"] * components["validity"] + weights["energy"] * components["energy"]
              + weights.get("hardware", 0.0) * components.get("hardware", 0.0)
              + progress * (weights["barren_plateau"] * components["barren_plateau"]
                            + weights["gate_cost"] * components["gate_cost"]))
    details = dict(components)
    details.update(normalised_error=eps, progress=progress, flagged=flagged)
    return RewardResult(version=REWARD_VERSION, seed_reward=float(seed_reward),
                        shaped_reward=float(min(1.0, max(0.0, shaped))), components=details,
                        seed_reward_literal=float(literal))
