"""Risk rules as data: a readable condition language compiled to SQL and Python, versions with
four-eyes approval, the rules in effect per record kind, and dry-runs over the lake."""

from sciti.risk.rules.active import active_rules, clear_cache, rules_in_effect
from sciti.risk.rules.columns import SCOPE_FIELDS, SUBJECT_KINDS, column_types
from sciti.risk.rules.compiled import CompiledRule, compile_python, compile_rule, compile_sql, render_reason
from sciti.risk.rules.definition import LANES, RuleDef, canonical_yaml, parse_rule
from sciti.risk.rules.dryrun import MAX_DAYS, DryRunResult, dry_run
from sciti.risk.rules.dryrun_audited import dry_run_as, dry_run_version
from sciti.risk.rules.errors import (
    FourEyesViolation,
    NotTheAuthor,
    RuleError,
    RuleNotFound,
    RuleSyntaxError,
    RuleWorkflowError,
)
from sciti.risk.rules.protected import (
    DryRunAccess,
    ProtectedFieldsRefused,
    authorize_dry_run,
    protected_fields,
    shown_dry_run,
)
from sciti.risk.rules.starter import load_starter_rules, starter_rule_texts
from sciti.risk.rules.store import (
    History,
    approve,
    audit_refusal,
    bump_generation,
    create_rule,
    diff,
    get_rule,
    get_version,
    history,
    list_rules,
    new_version,
    reject,
    retire,
    rules_generation,
    save_rule,
    submit,
)

__all__ = [
    "LANES",
    "MAX_DAYS",
    "SCOPE_FIELDS",
    "SUBJECT_KINDS",
    "CompiledRule",
    "DryRunAccess",
    "DryRunResult",
    "FourEyesViolation",
    "History",
    "NotTheAuthor",
    "ProtectedFieldsRefused",
    "RuleDef",
    "RuleError",
    "RuleNotFound",
    "RuleSyntaxError",
    "RuleWorkflowError",
    "active_rules",
    "approve",
    "audit_refusal",
    "authorize_dry_run",
    "bump_generation",
    "canonical_yaml",
    "clear_cache",
    "column_types",
    "compile_python",
    "compile_rule",
    "compile_sql",
    "create_rule",
    "diff",
    "dry_run",
    "dry_run_as",
    "dry_run_version",
    "get_rule",
    "get_version",
    "history",
    "list_rules",
    "load_starter_rules",
    "new_version",
    "parse_rule",
    "protected_fields",
    "reject",
    "render_reason",
    "retire",
    "rules_generation",
    "rules_in_effect",
    "save_rule",
    "shown_dry_run",
    "starter_rule_texts",
    "submit",
]
