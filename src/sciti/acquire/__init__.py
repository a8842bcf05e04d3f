"""Acquisition: connectors, formats, the exactly-once runner and the quarantine."""

from sciti.acquire.batch_registry import list_batches
from sciti.acquire.connector import Connector, Output, list_connectors, load_connector
from sciti.acquire.errors import AcquireError, ConnectorError
from sciti.acquire.items import Parsed, Rejected
from sciti.acquire.quarantine import discard, list_quarantine, resubmit, show_quarantine
from sciti.acquire.quarantine_bulk import Selection, discard_selection
from sciti.acquire.quarantine_resubmit import resubmit_selection
from sciti.acquire.registry import FORMATS, TABLE_FORMATS, FormatContext
from sciti.acquire.results import BatchResult
from sciti.acquire.runner import Runner

__all__ = [
    "FORMATS",
    "TABLE_FORMATS",
    "AcquireError",
    "BatchResult",
    "Connector",
    "ConnectorError",
    "FormatContext",
    "Output",
    "Parsed",
    "Rejected",
    "Runner",
    "Selection",
    "discard",
    "discard_selection",
    "list_batches",
    "list_connectors",
    "list_quarantine",
    "load_connector",
    "resubmit",
    "resubmit_selection",
    "show_quarantine",
]
