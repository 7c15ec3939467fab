"""govcloud's mandatory policy pack: `pulumi preview --policy-pack security/policy`."""

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from security.policy.rules import RULES


def _policy(name: str) -> ResourceValidationPolicy:
    check, description = RULES[name]

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        props: dict[str, Any] = dict(args.props)
        for violation in check(args.resource_type, props):
            report(f"{args.name}: {violation}", None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


PolicyPack(
    name="govcloud-mandatory",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[_policy(n) for n in RULES],
)
