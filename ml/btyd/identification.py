"""Does a fitted purchase model identify dropout? If not, say why in plain words.

A BTYD fit can converge and still say nothing about who has stopped buying: when
the data show no sign of customers leaving, the maximum-likelihood dropout
parameters run to their bounds (BG/NBD and MBG/NBD: ``a -> 0`` or ``b -> inf``, a
dropout probability per purchase of about zero; Pareto/NBD: ``s -> 0`` or
``beta -> inf``, lifetimes far longer than the data), and P(alive) is then about
the same for everyone. Such a P(alive) must not be published as if it ranked
customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.btyd.inputs import _summary
from ml.btyd.optimiser import _LOG_BOUND

__all__ = ["DropoutIdentification", "dropout_identification"]

#: Below this mean dropout probability per purchase (BG/MBG) or expected share of
#: customers leaving over the observed span (Pareto/NBD), dropout is not identified.
MIN_DROPOUT = 1e-3
#: P(alive) spread (5th to 95th percentile) below which it does not rank customers.
MIN_P_ALIVE_SPREAD = 0.02
# A log-parameter within this distance of the search bound is "on the bound".
_BOUND_MARGIN = 0.5


@dataclass(frozen=True)
class DropoutIdentification:
    """Whether a fitted model identifies dropout, and why not in words a marketer can read."""

    identified: bool
    reason: str
    p_alive_spread: float


def dropout_identification(model: Any, X: Any, p_alive: Any = None) -> DropoutIdentification:
    """Check that a fitted BG/NBD, MBG/NBD or Pareto/NBD model identifies dropout.

    Parameters
    ----------
    model : fitted transaction model
        With ``params_`` (``a``, ``b`` or ``s``, ``beta``) and ``probability_alive``.
    X : DataFrame, mapping or array
        The summary (frequency, recency, T) the model is judged on.
    p_alive : array, default=None
        ``model.probability_alive(X)`` when the caller has it already.

    Returns
    -------
    DropoutIdentification
        ``identified`` False when a dropout parameter ran to its bound, the implied
        dropout is negligible, or P(alive) is nearly the same for every customer;
        ``reason`` says which, in plain words ("" when identified).
    """
    params = model.params_
    name = getattr(model, "_model_name", type(model).__name__)
    _, _, T = _summary(X)
    p_alive = model.probability_alive(X) if p_alive is None else np.asarray(p_alive)
    spread = float(np.subtract(*np.percentile(p_alive, [95, 5]))) if p_alive.size else 0.0
    on_bound = [k for k, v in params.items() if abs(np.log(v)) > _LOG_BOUND - _BOUND_MARGIN]
    if "a" in params:
        dropout = params["a"] / (params["a"] + params["b"])
        what = f"a {dropout:.2%} chance of stopping after each purchase"
    else:
        # expected share of customers leaving over the longest observed span
        span = float(np.max(T)) if T.size else 0.0
        dropout = 1.0 - (params["beta"] / (params["beta"] + span)) ** params["s"]
        what = f"{dropout:.2%} of customers leaving over {span:.0f} {model.time_unit}"
    problems = []
    if on_bound:
        problems.append(
            f"its dropout parameters ran to the edge of what can be estimated ({', '.join(on_bound)})"
        )
    if dropout < MIN_DROPOUT:
        problems.append(f"it estimates that customers practically never stop buying ({what})")
    if spread < MIN_P_ALIVE_SPREAD:
        problems.append(
            f"it gives nearly every customer the same chance of still being active "
            f"(P(alive) varies by {spread:.3f} between the 5th and 95th percentile)"
        )
    if not problems:
        return DropoutIdentification(True, "", spread)
    reason = (
        f"{name} cannot tell which customers have stopped buying: "
        + "; ".join(problems)
        + ". The purchase history does not show customers leaving (too short, or they "
        "keep buying), so P(alive) is withheld rather than shown as if it ranked customers."
    )
    return DropoutIdentification(False, reason, spread)
