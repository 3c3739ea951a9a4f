"""Black-box membership inference against the released generator's samples.

The attack follows the full black-box setting of GAN-Leaks (Chen et al., CCS 2020): the
attacker holds only generated samples and scores a candidate scan by its distance to
the nearest one. Training scans (members) of a generator that memorised sit closer to
its samples than unseen scans (non-members) do. Non-members are the holdout scans kept
apart from the copy-threshold calibration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medgan.evaluation.stats import estimate, finite_or_none, not_computable, roc_auc

__all__ = ["STATEMENT", "membership_attack"]

STATEMENT = (
    "An attack AUC near 0.5 is evidence that this attack cannot tell training scans from unseen ones; "
    "it is not a guarantee of privacy. Only differential privacy bounds every attack."
)


def membership_attack(
    member_distances: np.ndarray,
    nonmember_distances: np.ndarray,
    *,
    n_bootstrap: int,
    confidence: float,
    rng: np.random.Generator,
    min_nonmembers: int = 100,
    target_fpr: float = 0.01,
) -> dict[str, Any]:
    """Return ``mia_auc`` with a bootstrap interval and the TPR at ``target_fpr``.

    Args:
        member_distances: distance of each training scan to its nearest synthetic scan.
        nonmember_distances: the same for attack holdout scans.
        min_nonmembers: below this many non-members, TPR at 1% FPR is "not computable"
            (the 1% quantile of fewer than 100 scores is the minimum or an interpolation).
    """
    members = -np.asarray(member_distances, dtype=np.float64)  # larger score means "member"
    nonmembers = -np.asarray(nonmember_distances, dtype=np.float64)
    counts = {"members": int(members.size), "nonmembers": int(nonmembers.size)}
    result: dict[str, Any] = {"method": "distance to the nearest synthetic scan (GAN-Leaks full black-box)", "counts": counts}
    if members.size < 2 or nonmembers.size < 2:
        result["mia_auc"] = not_computable("the attack needs at least two members and two non-members", counts)
        result["tpr_at_1pct_fpr"] = not_computable(f"needs at least {min_nonmembers} non-members", {**counts, "min_nonmembers": min_nonmembers})
        result["statement"] = STATEMENT
        return result
    auc = roc_auc(members, nonmembers)
    boot = []
    for _ in range(n_bootstrap):
        boot.append(roc_auc(members[rng.integers(0, members.size, members.size)], nonmembers[rng.integers(0, nonmembers.size, nonmembers.size)]))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    result["mia_auc"] = estimate(auc, (low, high))
    if nonmembers.size < min_nonmembers:
        result["tpr_at_1pct_fpr"] = not_computable(
            f"TPR at 1% FPR needs at least {min_nonmembers} non-members to mean something", {**counts, "min_nonmembers": min_nonmembers}
        )
    else:
        # The threshold admits at most target_fpr of non-members; ties at the threshold count as rejected.
        ordered = np.sort(nonmembers)[::-1]
        allowed = int(np.floor(target_fpr * nonmembers.size))
        threshold = ordered[allowed] if allowed < ordered.size else -np.inf
        tpr = float((members > threshold).mean())
        fpr = float((nonmembers > threshold).mean())
        result["tpr_at_1pct_fpr"] = {"value": finite_or_none(tpr), "fpr": finite_or_none(fpr), "counts": counts}
    result["statement"] = STATEMENT
    return result
