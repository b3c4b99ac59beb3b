"""Model validation: checks on a candidate model (and a baseline) over data, and a report.

    report = validate_models(candidate, data, target="species", baseline=champion,
                             checks=[checks.metric("accuracy", min=0.9),
                                     checks.no_regression("accuracy", max_drop=0.01)])

It knows nothing of the registry or the store: it takes loaded models and data, and returns
a ValidationReport whose ``to_dict`` the registry keeps with the model version.
"""

from __future__ import annotations

from shipyard.validation import checks as checks
from shipyard.validation.base import Check as Check
from shipyard.validation.base import CheckResult as CheckResult
from shipyard.validation.context import ValidationContext as ValidationContext
from shipyard.validation.engine import validate_models as validate_models
from shipyard.validation.report import ValidationReport as ValidationReport

__all__ = [
    "Check",
    "CheckResult",
    "ValidationContext",
    "ValidationReport",
    "checks",
    "validate_models",
]
