"""The assessment engine: rules + model + lanes, in real time and in batch, with durable results,
the officers' queue, overrides, inspection feedback and hit-rate reports."""

from sciti.risk.engine.assessment import ASSESSMENTS_SCHEMA, ASSESSMENTS_TABLE, Assessment, FactorOut, combine
from sciti.risk.engine.assessor import Assessor, KindParts
from sciti.risk.engine.errors import (
    AssessmentInputError,
    AssessmentNotFound,
    EngineError,
    OutsideOffice,
    QueueItemNotFound,
    StoreUnavailable,
    WorkflowConflict,
)
from sciti.risk.engine.feedback import InspectionInput, record_inspection, submit_inspection
from sciti.risk.engine.flusher import Flusher, FlusherProcess
from sciti.risk.engine.report import hit_report
from sciti.risk.engine.ruleset import RuleHit, RuleSet
from sciti.risk.engine.scoring import ScoreResult, score_since
from sciti.risk.engine.service import RiskService, service_for
from sciti.risk.engine.store import AssessmentStore
from sciti.risk.engine.subjects import SUBJECTS
from sciti.risk.engine.workqueue import (
    QueuePage,
    assign,
    in_scope,
    list_queue,
    override,
    overrides_of,
    queue_item,
)

__all__ = [
    "ASSESSMENTS_SCHEMA",
    "ASSESSMENTS_TABLE",
    "SUBJECTS",
    "Assessment",
    "AssessmentInputError",
    "AssessmentNotFound",
    "AssessmentStore",
    "Assessor",
    "EngineError",
    "FactorOut",
    "Flusher",
    "FlusherProcess",
    "InspectionInput",
    "KindParts",
    "OutsideOffice",
    "QueueItemNotFound",
    "QueuePage",
    "RiskService",
    "RuleHit",
    "RuleSet",
    "ScoreResult",
    "StoreUnavailable",
    "WorkflowConflict",
    "assign",
    "combine",
    "hit_report",
    "in_scope",
    "list_queue",
    "override",
    "overrides_of",
    "queue_item",
    "record_inspection",
    "score_since",
    "service_for",
    "submit_inspection",
]
