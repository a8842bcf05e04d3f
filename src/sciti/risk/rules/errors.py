"""Errors of the risk rules: bad rule text (with line and column), workflow and four-eyes refusals."""

from __future__ import annotations

from sciti.errors import Conflict, InvalidInput, NotFound, SCITIError


class RuleError(SCITIError):
    code = "rule_error"
    http_status = 400


class RuleSyntaxError(InvalidInput):
    """The rule text cannot be read; ``details`` carries field, line, column and what was expected."""

    code = "rule_invalid"
    default_remedy = "correct the rule at the position given; docs/risk-rules.md shows the syntax"


class RuleNotFound(NotFound):
    code = "rule_not_found"
    default_remedy = "list rules with `sciti risk rule list` or GET /api/v1/rules"


class RuleWorkflowError(Conflict):
    """The step is not allowed in the version's current state (e.g. approving a draft not submitted)."""

    code = "rule_workflow"


class FourEyesViolation(RuleError):
    """The author of a version tried to approve it, or the approver lacks rules.approve."""

    code = "four_eyes"
    http_status = 403
    default_remedy = "a different user holding the rules.approve permission must approve this version"


class NotTheAuthor(RuleError):
    """Someone other than a draft's author tried to submit it: submitting says "I, who wrote this,
    ask for its approval", and only the author can say that."""

    code = "not_author"
    http_status = 403


__all__ = [
    "FourEyesViolation",
    "NotTheAuthor",
    "RuleError",
    "RuleNotFound",
    "RuleSyntaxError",
    "RuleWorkflowError",
]
