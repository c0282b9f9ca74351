"""Are the circuits a candidate built at the extra sizes one family with the circuit at the goal's size?

The barren-plateau scaling fit builds the candidate at n-4, n-2 and n (barren.py). The candidate controls what it
returns at each size, and the goal's size is recognisable, so a program could return a different circuit at the
smaller sizes (damped angles, padding with Parameters that do nothing, other gates) to flatten the fitted decay.
Circuits at the extra sizes therefore have to look like the same recipe applied at another width. **Definition**
(checked in the trusted process, on the deserialised circuits):

1. the same set of gate names (barriers ignored);
2. gate-type proportions within ``GATE_MIX_TOLERANCE`` in total-variation distance, where a gate with a
   Parameter in its angle and one with a fixed angle count as different types (``ry(theta)`` vs ``ry(0.3)``):
   a recipe applied to more qubits or with layers that grow with n keeps its mix, padding changes it;
3. (measured, in barren.py) the fraction of Parameters whose angle-gradient variance vanishes agrees within
   ``DEAD_FRACTION_TOLERANCE``: Parameters placed where they do nothing at the small sizes only.

Angle coefficients are *not* compared: scaling a Parameter (``0.05*theta`` at one size, ``2**(n/2)*theta`` at
another) is a reparametrisation of the same states, and the check measures in angle units with angles sampled
uniformly (angles.py), so it changes nothing. A lattice candidate that raises, returns nothing, fails verification or breaks this definition at an extra size
gets the verdict "not measurable", paid exactly like "barren plateau". What this cannot see: a recipe that keeps
its gate mix and liveness but arranges gates differently at each size. The level rule at the goal's own size
(barren.py), which the candidate cannot influence without changing the circuit that is scored, still applies.
"""

from __future__ import annotations

import collections

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression

from .simulation.program import AngleError, affine_form

GATE_MIX_TOLERANCE = 0.2
"""Largest total-variation distance between the gate-type proportions of two sizes of one family."""
DEAD_FRACTION_TOLERANCE = 0.2
"""Largest difference between two sizes in the fraction of Parameters whose gradient variance vanishes."""


def _signature(circuit: QuantumCircuit) -> tuple[set, dict]:
    names: set[str] = set()
    mix: collections.Counter = collections.Counter()
    cache: dict = {}
    for inst in circuit.data:
        op = inst.operation
        if op.name == "barrier":
            continue
        names.add(op.name)
        parametrised = False
        for value in op.params:
            if isinstance(value, ParameterExpression) and value.parameters:
                try:
                    coeffs, _ = affine_form(value, cache)
                except AngleError:
                    continue
                parametrised = parametrised or any(c != 0.0 for c in coeffs.values())
        mix[op.name + ("(theta)" if parametrised else "")] += 1
    total = sum(mix.values()) or 1
    return names, {k: v / total for k, v in mix.items()}


def family_differences(goal_circuit: QuantumCircuit, other: QuantumCircuit) -> list[str]:
    """Why ``other`` is not the same family as ``goal_circuit`` (rules 1-2 of the module docstring); [] if it is."""
    names_a, mix_a = _signature(goal_circuit)
    names_b, mix_b = _signature(other)
    found = []
    if names_a != names_b:
        found.append(f"gates {sorted(names_b)} instead of {sorted(names_a)}")
    distance = 0.5 * sum(abs(mix_a.get(k, 0.0) - mix_b.get(k, 0.0)) for k in set(mix_a) | set(mix_b))
    if distance > GATE_MIX_TOLERANCE:
        found.append(f"gate-type proportions differ by {distance:.2f} in total variation (tolerance "
                     f"{GATE_MIX_TOLERANCE:g})")
    return found
