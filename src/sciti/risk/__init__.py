"""sciti.risk"""

# Risk rules (contract 3): definitions, SQL/Python compilers, four-eyes versions, active rules, dry-run.
# Assessment engine (contract 4): real-time and batch assessment, lanes, queue, feedback, report.
from sciti.risk.engine import Assessment as Assessment
from sciti.risk.engine import Assessor as Assessor
from sciti.risk.engine import hit_report as hit_report
from sciti.risk.engine import score_since as score_since

# Derived features (contract 1) and models (contract 2).
from sciti.risk.features import Reference as Reference
from sciti.risk.features import build_reference as build_reference
from sciti.risk.features import columns as columns
from sciti.risk.features import compute_batch as compute_batch
from sciti.risk.features import compute_one as compute_one
from sciti.risk.features import lake_records as lake_records
from sciti.risk.lanes import LanePolicy as LanePolicy
from sciti.risk.lanes import load_policy as load_policy
from sciti.risk.models import Factor as Factor
from sciti.risk.models import ScoringModel as ScoringModel
from sciti.risk.models import list_versions as list_versions
from sciti.risk.models import load_model as load_model
from sciti.risk.models import promote as promote
from sciti.risk.models import train as train
from sciti.risk.rules import CompiledRule as CompiledRule
from sciti.risk.rules import DryRunResult as DryRunResult
from sciti.risk.rules import RuleDef as RuleDef
from sciti.risk.rules import active_rules as active_rules
from sciti.risk.rules import compile_python as compile_python
from sciti.risk.rules import compile_sql as compile_sql
from sciti.risk.rules import dry_run as dry_run
from sciti.risk.rules import parse_rule as parse_rule
from sciti.risk.rules import rules_generation as rules_generation
