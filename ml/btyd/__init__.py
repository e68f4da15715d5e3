"""Buy-till-you-die (BTYD) customer-base models fitted by maximum likelihood.

Public API
----------
BetaGeoModel
    BG/NBD (Fader, Hardie & Lee 2005): purchase counts and "probability alive".
ModifiedBetaGeoModel
    MBG/NBD (Batislam et al. 2007): BG/NBD with dropout possible at the first purchase.
ParetoNBDModel
    Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie's 2005 note).
GammaGammaModel
    Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie's 2013 note).
dropout_identification
    Whether a fitted purchase model identifies dropout, with a reason in plain words.
customer_lifetime_value
    Discounted expected spend over a horizon from a transaction and a spend model.
summary_from_customer_features
    The lifetimes-style summary (frequency, recency, T, monetary_value) from dbt's features.
BTYDConvergenceError, BTYDConvergenceWarning
    Raised / emitted when the optimiser fails or falls back.

The input of every model is the lifetimes-style summary, one row per customer:

* ``frequency`` -- number of repeat purchases (purchase periods after the first);
* ``recency``   -- time from the first to the last purchase (0 without repeats);
* ``T``         -- time from the first purchase to the end of the observation;
* ``monetary_value`` -- mean spend of the repeat purchases (Gamma-Gamma only).

**Time unit.** ``recency`` and ``T`` may be in any unit (days from dbt, weeks in
the papers); a fitted model is in that unit, and every time argument of its
methods (``t``, ``horizon``, ``discount_period``) must be in the same unit. The
``time_unit`` parameter only names the unit, for reports and error messages.

**Fitting.** Identical ``(frequency, recency, T)`` rows are collapsed once and
weighted by their count, so the log-likelihood is evaluated per distinct row
(days are integers in the warehouse, so a million customers have a few hundred
thousand distinct rows at most). Log-likelihoods use ``gammaln`` / ``betaln`` and
log-sum-exp; L-BFGS-B runs on the log-parameters (analytic gradients; Pareto/NBD's
through the nodes of its quadrature) and falls back to Nelder-Mead with a warning; if both fail a
:class:`BTYDConvergenceError` is raised, so a fit never ends with NaN parameters.
``init_params`` starts the optimiser elsewhere, e.g. at a sample's optimum (warm start).
The optimiser runs with one BLAS/OpenMP thread (:func:`ml.threads.one_native_thread`):
the likelihoods are elementwise, and a second thread only waits (2-4x slower under load).

This package is a pure library (numpy, pandas, scipy, scikit-learn, threadpoolctl).
"""

# ``optimize`` is re-exported so tests can make the optimiser fail (monkeypatch).
from scipy import optimize  # noqa: F401

from ml.btyd.bg_nbd import BetaGeoModel
from ml.btyd.clv import customer_lifetime_value
from ml.btyd.gamma_gamma import GammaGammaModel
from ml.btyd.identification import DropoutIdentification, dropout_identification
from ml.btyd.mbg_nbd import ModifiedBetaGeoModel
from ml.btyd.optimiser import BTYDConvergenceError, BTYDConvergenceWarning
from ml.btyd.pareto_nbd import ParetoNBDModel
from ml.btyd.summary import summary_from_customer_features

__all__ = [
    "BTYDConvergenceError",
    "BTYDConvergenceWarning",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "DropoutIdentification",
    "customer_lifetime_value",
    "dropout_identification",
    "summary_from_customer_features",
]
