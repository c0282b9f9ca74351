"""Regenerate the committed molecular Hamiltonians (workers/evaluation/goals/data/*.json) with PySCF.

Needs the optional ``molecules`` extra (PySCF); workers never do, they read the JSON. For each molecule: RHF in
STO-3G, a CASCI with the stated frozen core and active space (the full space for H2 and LiH), the active-space
integrals mapped to qubits with Jordan-Wigner (spin-up orbitals on the lower half of the qubits, occupied = |1>,
Qiskit label order: the rightmost character acts on qubit 0), and the PySCF CASCI energy (= FCI in the active
space; PySCF FCI itself for full spaces) as the reference every load checks against the eigensolver. Each file
records the geometry, basis, frozen core, active space, electron numbers, the software versions and the energies.

    pip install -e '.[molecules]'
    python scripts/generate_molecules.py              # every molecule below
    python scripts/generate_molecules.py h2o n2       # some of them
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import pathlib
import platform

OUT_DIR = pathlib.Path(__file__).resolve().parent.parent / "workers" / "evaluation" / "goals" / "data"
H2_BONDS = (0.50, 0.60, 0.70, 0.80, 0.90, 1.00, 1.25, 1.50, 2.00, 2.50)
LIH_BONDS = (1.00, 1.20, 1.40, 1.60, 1.80, 2.00, 2.50, 3.00, 3.50, 4.00)
_HOH = math.radians(104.45) / 2


def _spec(atom: str, title: str, *, frozen: int = 0, active: tuple[int, int] | None = None, curve: str | None = None,
          bond: float | None = None) -> dict:
    return {"atom": atom, "title": title, "frozen_orbitals": frozen, "active": active, "curve": curve, "bond": bond}


MOLECULES = {
    "h2": _spec("H 0 0 0; H 0 0 0.735", "Hydrogen molecule H2 at 0.735 Å", bond=0.735),
    "lih": _spec("Li 0 0 0; H 0 0 1.5", "Lithium hydride LiH at 1.5 Å", bond=1.5),
    **{f"h2-{r:.2f}": _spec(f"H 0 0 0; H 0 0 {r}", f"Hydrogen molecule H2 at {r:.2f} Å (dissociation curve)",
                            curve="h2", bond=r) for r in H2_BONDS},
    **{f"lih-{r:.2f}": _spec(f"Li 0 0 0; H 0 0 {r}", f"Lithium hydride LiH at {r:.2f} Å (dissociation curve)",
                             curve="lih", bond=r) for r in LIH_BONDS},
    "beh2": _spec("Be 0 0 0; H 0 0 1.3264; H 0 0 -1.3264", "Beryllium hydride BeH2, linear, Be-H 1.3264 Å",
                  frozen=1, bond=1.3264),
    "h2o": _spec(f"O 0 0 0; H {0.9584 * math.sin(_HOH):.6f} {0.9584 * math.cos(_HOH):.6f} 0; "
                 f"H {-0.9584 * math.sin(_HOH):.6f} {0.9584 * math.cos(_HOH):.6f} 0",
                 "Water H2O, O-H 0.9584 Å, H-O-H 104.45°", frozen=1, bond=0.9584),
    "n2": _spec("N 0 0 0; N 0 0 1.0977", "Nitrogen N2 at 1.0977 Å in a (6 electrons, 6 orbitals) active space",
                frozen=4, active=(6, 6), bond=1.0977),
}


def jordan_wigner(constant: float, h1, h2) -> list[tuple[str, float]]:
    """Pauli terms of ``constant + sum h1[p,q] a+_p a_q + 1/2 sum (pq|rs) a+_p a+_r a_s a_q`` over spin orbitals.

    ``h1`` and ``h2`` (chemists' order, 4-index) are spatial; spin orbital ``p`` (up) is qubit p, (down) qubit n + p.
    """
    import numpy as np
    from qiskit.quantum_info import SparsePauliOp

    n = h1.shape[0]
    nq = 2 * n
    lower = []
    for p in range(nq):
        lower.append(SparsePauliOp.from_sparse_list(
            [("X" + "Z" * p, [p, *range(p)], 0.5), ("Y" + "Z" * p, [p, *range(p)], 0.5j)], num_qubits=nq))
    raise_ = [op.adjoint() for op in lower]
    parts = [SparsePauliOp("I" * nq, constant)]
    for s in (0, 1):
        for p in range(n):
            for q in range(n):
                if abs(h1[p, q]) > 1e-12:
                    parts.append(h1[p, q] * (raise_[p + s * n] @ lower[q + s * n]))
    for s in (0, 1):
        for t in (0, 1):
            for p, q, r, u in np.ndindex(n, n, n, n):
                v = h2[p, q, r, u]
                a, b, c, d = p + s * n, q + s * n, r + t * n, u + t * n
                if abs(v) < 1e-12 or a == c or b == d:
                    continue
                parts.append(0.5 * v * (raise_[a] @ raise_[c] @ lower[d] @ lower[b]))
    op = SparsePauliOp.sum(parts).simplify(atol=1e-12)
    assert np.max(np.abs(op.coeffs.imag), initial=0.0) < 1e-10, "the qubit Hamiltonian is not real"
    return [(label, float(np.real(c))) for label, c in op.to_list()]


def _texts(spec: dict, nelec_active: int, norb: int) -> tuple[str, str, str]:
    """(reference method, frozen-core sentence, description) of one molecule."""
    frozen = spec["frozen_orbitals"]
    method = ("FCI (PySCF) in the full space" if frozen == 0 and spec["active"] is None else
              f"CASCI (PySCF) = FCI in the active space of {nelec_active} electrons in {norb} orbitals")
    core = (f"{frozen} lowest RHF orbital(s) frozen (doubly occupied)" if frozen else "none")
    description = (f"{spec['title']}, STO-3G basis, {method.split(' (')[0]} space: {nelec_active} electrons in "
                   f"{norb} spatial orbitals, frozen core: {core}; Jordan-Wigner mapping ({2 * norb} spin "
                   f"orbitals -> {2 * norb} qubits, spin up on qubits 0..{norb - 1}). Energy includes nuclear "
                   "repulsion and the frozen core.")
    return method, core, description


def build(name: str, spec: dict) -> dict:
    import numpy as np
    import pyscf
    import qiskit
    from pyscf import ao2mo, fci, gto, mcscf, scf

    mol = gto.M(atom=spec["atom"], basis="sto-3g", unit="angstrom", charge=0, spin=0, verbose=0)
    mf = scf.RHF(mol).run(conv_tol=1e-12)
    frozen = spec["frozen_orbitals"]
    nelec_active, norb = spec["active"] or (mol.nelectron - 2 * frozen, mol.nao - frozen)
    cas = mcscf.CASCI(mf, norb, nelec_active)
    cas.fcisolver.conv_tol = 1e-12
    reference = float(cas.kernel()[0])
    h1, ecore = cas.get_h1eff()
    h2 = ao2mo.restore(1, cas.get_h2eff(), norb)
    nuclear = float(mol.energy_nuc())
    terms = jordan_wigner(float(ecore) - nuclear, np.asarray(h1), np.asarray(h2))
    if frozen == 0 and spec["active"] is None:
        full_fci = float(fci.FCI(mf).kernel()[0])
        assert abs(full_fci - reference) < 1e-9, (full_fci, reference)
    up = down = nelec_active // 2
    method, core, description = _texts(spec, nelec_active, norb)
    return {
        "name": name,
        "description": description,
        "num_qubits": 2 * norb,
        "pauli_order": "qiskit little-endian labels: the rightmost character acts on qubit 0",
        "electronic_terms": terms,
        "nuclear_repulsion": nuclear,
        "fci_energy_pyscf": reference,
        "reference_method": method,
        "hartree_fock_energy": float(mf.e_tot),
        "num_particles": [up, down],
        "curve": spec["curve"],
        "provenance": {
            "geometry": spec["atom"],
            "bond_length_angstrom": spec["bond"],
            "unit": "angstrom",
            "basis": "sto-3g",
            "mapping": "jordan-wigner (spin-up block first, occupied = |1>)",
            "frozen_core": core,
            "active_space": f"{nelec_active} electrons in {norb} spatial orbitals"
                            + (" (full space)" if frozen == 0 and spec["active"] is None else ""),
            "num_particles": [up, down],
            "charge": 0,
            "spin": 0,
            "scf": "RHF, conv_tol 1e-12",
            "generator": "scripts/generate_molecules.py",
            "versions": {"python": platform.python_version(), "pyscf": pyscf.__version__,
                         "qiskit": qiskit.__version__, "numpy": np.__version__},
            "generated": dt.date.today().isoformat(),
        },
    }


def dump(data: dict) -> str:
    """JSON with one Pauli term per line (readable diffs, small files)."""
    terms = data["electronic_terms"]
    body = json.dumps({**data, "electronic_terms": "@TERMS@"}, indent=1, ensure_ascii=False)
    lines = ",\n".join(f"  {json.dumps([label, coeff])}" for label, coeff in terms)
    return body.replace('"@TERMS@"', "[\n" + lines + "\n ]") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=list(MOLECULES), help=f"molecules: {', '.join(MOLECULES)}")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(MOLECULES))
    if unknown:
        parser.error(f"unknown molecule(s) {unknown}; valid: {', '.join(MOLECULES)}")
    for name in args.names:
        data = build(name, MOLECULES[name])
        path = OUT_DIR / f"{name}.json"
        path.write_text(dump(data))
        print(f"{path.name}: {data['num_qubits']} qubits, {len(data['electronic_terms'])} terms, "
              f"reference {data['fci_energy_pyscf']:.12f} Ha ({data['reference_method']})")


if __name__ == "__main__":
    main()
