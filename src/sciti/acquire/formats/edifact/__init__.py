"""UN/EDIFACT CUSCAR and CUSDEC (D.96B, D.16A and any directory UNECE publishes in the same form).

``read`` is the format reader the runner calls: interchange bytes in, one ``Parsed`` per valid
message and one ``Rejected`` per bad message or damaged envelope out. Messages are checked
against the official directory (``settings.edifact_dir``) before they are mapped.
"""

from sciti.acquire.formats.edifact.cuscar import MappingError, map_cuscar
from sciti.acquire.formats.edifact.cusdec import map_cusdec
from sciti.acquire.formats.edifact.directory import Directory, DirectoryError, MessageDef, load_directory
from sciti.acquire.formats.edifact.reader import MAPPERS, read
from sciti.acquire.formats.edifact.structure import Problem, check_message
from sciti.acquire.formats.edifact.syntax import Segment, Separators, tokenize

__all__ = [
    "MAPPERS",
    "Directory",
    "DirectoryError",
    "MappingError",
    "MessageDef",
    "Problem",
    "Segment",
    "Separators",
    "check_message",
    "load_directory",
    "map_cuscar",
    "map_cusdec",
    "read",
    "tokenize",
]
