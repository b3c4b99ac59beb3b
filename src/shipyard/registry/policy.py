"""A registered model's promotion policy, and whether a stored validation satisfies it.

The policy is stored with the registered model, so that the gate is the registry's and not
whatever file the person promoting has at hand:

- ``protected_aliases`` (default ``["production"]``): only maintainers move them, and only
  through ``promote`` (validated) or ``promote --force --reason`` (audited);
- ``maintainers`` (default: whoever created the model): OS user names until the team server
  brings users;
- ``required_checks``: what a passing validation must include. An entry is a check name
  (``"metric:accuracy"``: that check passed, whatever its limits) or a check spec as in
  ``shipyard.yaml`` (``{"metric": "accuracy", "min": 0.9}``: that check passed with limits at
  least as strict). With none, the floor applies: a passed ``no_regression`` check against
  the alias's holder, or a passed ``metric`` check when the alias has no holder yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.registry.config import KINDS
from shipyard.store import validation as v
from shipyard.store.entities import RegisteredModel, ValidationRecord

DEFAULT_PROTECTED = ("production",)
# Limits where a larger value is stricter; all other numeric limits are stricter when smaller.
_STRICTER_WHEN_LARGER = {"min", "confidence", "min_rows", "resamples"}
_STRICTER_WHEN_SMALLER = {"max", "max_drop", "p95_ms", "p99_ms"}

Requirement = str | dict[str, Any]


@dataclass(frozen=True)
class Policy:
    protected_aliases: list[str] = field(default_factory=lambda: list(DEFAULT_PROTECTED))
    maintainers: list[str] = field(default_factory=list)
    required_checks: list[Requirement] = field(default_factory=list)

    @classmethod
    def of(cls, model: RegisteredModel) -> Policy:
        stored = model.policy
        return cls(
            protected_aliases=list(stored.get("protected_aliases", DEFAULT_PROTECTED)),
            maintainers=list(
                stored.get("maintainers", [model.created_by] if model.created_by else [])
            ),
            required_checks=list(stored.get("required_checks", [])),
        )

    def may_maintain(self, actor: str) -> bool:
        return not self.maintainers or actor in self.maintainers

    def to_dict(self) -> dict[str, Any]:
        return {
            "protected_aliases": self.protected_aliases,
            "maintainers": self.maintainers,
            "required_checks": self.required_checks,
        }


def check_requirement(item: Any) -> Requirement:
    """A required check as given by a user: a known check name, or a spec that builds."""
    from shipyard.validation.metrics import METRICS

    if isinstance(item, Mapping):
        from shipyard.registry.config import build_check

        # Building it checks the kind and arguments; its spec fills in the defaults.
        spec: dict[str, Any] = build_check(dict(item), "required check").spec()
        return spec
    if not isinstance(item, str) or not item.strip():
        raise InvalidInput(f"a required check is a name or a spec, got {item!r}")
    kind, _, metric = item.strip().partition(":")
    forms = "metric:<metric>, no_regression:<metric>, latency, signature_compatible, "
    forms += "predictions_valid"
    if kind in ("metric", "no_regression"):
        if metric not in METRICS:
            raise InvalidInput(
                f"required check {item!r}: unknown metric {metric!r} "
                f"(known: {', '.join(sorted(METRICS))})"
            )
    elif kind not in ("latency", "signature_compatible", "predictions_valid") or metric:
        raise InvalidInput(f"unknown required check {item!r} (names are {forms})")
    return item.strip()


def describe(requirement: Requirement) -> str:
    if isinstance(requirement, str):
        return requirement
    return ", ".join(f"{k}={val}" for k, val in requirement.items() if val is not None)


def unmet(policy: Policy, record: ValidationRecord, holder: int | None) -> list[str]:
    """What ``record`` lacks to promote under ``policy`` (empty: nothing)."""
    passed = [
        r
        for r in record.report.get("results", [])
        if r.get("status") == "passed" and r.get("slice") is None
    ]
    missing = []
    for requirement in policy.required_checks:
        if isinstance(requirement, str):
            ok = any(r.get("name") == requirement for r in passed)
        else:
            ok = any(_at_least_as_strict(r.get("spec") or {}, requirement) for r in passed)
        if not ok:
            missing.append(describe(requirement))
    if not policy.required_checks:
        names = [str(r.get("name", "")) for r in passed]
        if holder is not None and not any(n.startswith("no_regression:") for n in names):
            missing.append(f"a no_regression check against version {holder}")
        if holder is None and not any(n.startswith("metric:") for n in names):
            missing.append("a metric check (the alias has no holder to compare with)")
    return missing


def _kind(spec: Mapping[str, Any]) -> str | None:
    found = [k for k in spec if k in KINDS]
    return found[0] if len(found) == 1 else None


def _at_least_as_strict(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    kind = _kind(want)
    if kind is None or _kind(have) != kind or have.get(kind) != want.get(kind):
        return False
    for key, limit in want.items():
        if key == kind or limit is None:
            continue
        got = have.get(key)
        if key in _STRICTER_WHEN_LARGER:
            if got is None or got < limit:
                return False
        elif key in _STRICTER_WHEN_SMALLER:
            if got is None or got > limit:
                return False
        elif got != limit:
            return False
    return True


def edited(
    current: Policy,
    *,
    protect: Sequence[str] = (),
    unprotect: Sequence[str] = (),
    add_maintainers: Sequence[str] = (),
    remove_maintainers: Sequence[str] = (),
    require: Sequence[Requirement] = (),
    unrequire: Sequence[str] = (),
    replace_required: Sequence[Requirement] | None = None,
) -> Policy:
    """``current`` with entries added and removed; removing what is not there is an error."""
    aliases = list(current.protected_aliases)
    for alias in protect:
        if v.check_alias(alias, settable=True) not in aliases:
            aliases.append(alias)
    for alias in unprotect:
        if alias not in aliases:
            raise InvalidInput(f"{alias!r} is not a protected alias ({', '.join(aliases)})")
        aliases.remove(alias)
    people = list(current.maintainers)
    for person in add_maintainers:
        if not isinstance(person, str) or not person.strip():
            raise InvalidInput(f"a maintainer is a non-empty user name, got {person!r}")
        if person.strip() not in people:
            people.append(person.strip())
    for person in remove_maintainers:
        if person not in people:
            raise InvalidInput(f"{person!r} is not a maintainer ({', '.join(people)})")
        people.remove(person)
    required = (
        list(current.required_checks)
        if replace_required is None
        else [check_requirement(r) for r in replace_required]
    )
    for item in require:
        requirement = check_requirement(item)
        if requirement not in required:
            required.append(requirement)
    for name in unrequire:
        matches = [r for r in required if describe(r) == name or r == name]
        if not matches:
            shown = "; ".join(describe(r) for r in required) or "none"
            raise InvalidInput(f"{name!r} is not a required check (required: {shown})")
        required.remove(matches[0])
    return Policy(aliases, people, required)
