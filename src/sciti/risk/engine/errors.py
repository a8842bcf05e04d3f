"""Errors of the assessment engine (real-time and batch scoring, queue, feedback)."""

from __future__ import annotations

from sciti.errors import SCITIError


class EngineError(SCITIError):
    code = "risk_engine_error"


class AssessmentInputError(EngineError):
    """A record sent for assessment cannot be scored as it is."""

    code = "invalid_assessment_input"
    http_status = 422
    default_remedy = "send the record's fields as described in docs/risk-engine.md"


class QueueItemNotFound(EngineError):
    code = "not_found"
    http_status = 404
    default_message = "no flagged record with this assessment id"
    default_remedy = "list the queue with GET /api/v1/risk/queue"


class AssessmentNotFound(EngineError):
    code = "not_found"
    http_status = 404
    default_message = "no assessment with this id"
    default_remedy = "use the assessment_id returned by POST /api/v1/risk/assess or shown in the queue"


class OutsideOffice(EngineError):
    """An item of another office, asked for by an office-bound account.

    Raised as :class:`QueueItemOutsideOffice` or :class:`AssessmentOutsideOffice`: each answers
    exactly as an unknown id does (same status, code, message and remedy), so an account cannot
    learn which ids exist in other offices. The API catches this base to audit the refusal.
    """


class QueueItemOutsideOffice(QueueItemNotFound, OutsideOffice):
    pass


class AssessmentOutsideOffice(AssessmentNotFound, OutsideOffice):
    pass


class WorkflowConflict(EngineError):
    code = "conflict"
    http_status = 409


class StoreUnavailable(EngineError):
    """The durable buffer could not take an assessment: the answer is withheld rather than lost."""

    code = "assessment_not_stored"
    http_status = 503
    default_remedy = "retry shortly; check the operational database (`sciti risk status`)"


class ScoringStopped(EngineError):
    """A scoring run failed part way: the parts before the failure are kept (in the lake, queued,
    their places counted), the rest is not."""

    code = "scoring_stopped"
    default_remedy = (
        "the parts kept are whole; fix the cause and run `sciti risk score --unassessed-only` to score "
        "the records still without an assessment"
    )
