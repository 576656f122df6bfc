"""Certified binary optima of linear models without bias, beyond enumeration.

For a convex training loss ``f`` (logistic, cross-entropy or squared, :mod:`qnnlab.certify.objectives`),
the minimum over the box ``[−1, 1]^m`` is a certified lower bound on the binary optimum at any ``m``
(:mod:`qnnlab.certify.box`), and a best-first branch-and-bound over sign patterns using these bounds
finds the optimum itself far past the ``2^20`` points enumeration reaches
(:mod:`qnnlab.certify.branch_and_bound`)::

    from qnnlab.certify import box_bound, certified_gap, certify, linear_objective, objective_for

    f = linear_objective("logistic", x_train, y_train)  # or objective_for(model, x_train, y_train)
    f_box = box_bound(f).lower                          # f_box ≤ min over {±1}^m of f
    gap_bound = certified_gap(f.value(q), f_box)        # (f(Q(w)) − f_box)/f_box, for a trained Q(w) = q
    cert = certify(f, incumbents=[q], time_limit=60)    # cert.status, .weights, .value, .lower, .gap

Only the binary grid ``{±1}`` with scale 1 is covered (the grid qnnlab trains linear models on).
"""

from qnnlab.certify.box import Relaxation, box_bound, certified_gap, frank_wolfe_bound, relax
from qnnlab.certify.branch_and_bound import Certificate, certify
from qnnlab.certify.objectives import (
    LOSSES,
    CrossEntropy,
    LinearObjective,
    Logistic,
    Squared,
    linear_objective,
    objective_for,
)

__all__ = [
    "LOSSES",
    "Certificate",
    "CrossEntropy",
    "LinearObjective",
    "Logistic",
    "Relaxation",
    "Squared",
    "box_bound",
    "certified_gap",
    "certify",
    "frank_wolfe_bound",
    "linear_objective",
    "objective_for",
    "relax",
]
