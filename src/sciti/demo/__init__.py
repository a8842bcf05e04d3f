"""sciti.demo: the synthetic Hong Kong-like customs world (generator and ground truth).

``generate(out, scale, seed)`` writes every source feed in its real format under ``out`` and the
ground truth under ``out/ground_truth``; see docs/demo-world.md.
"""

from sciti.demo.config import SCALES, Scale, load_scale, world_data
from sciti.demo.declarations import PATTERNS
from sciti.demo.entities import World, build_world, hkid
from sciti.demo.errors import DemoError
from sciti.demo.ids import (
    imo_check_digit,
    imo_number,
    imo_valid,
    iso6346_check_digit,
    iso6346_valid,
    uscc,
    uscc_valid,
)
from sciti.demo.load import LoadReport, load_world
from sciti.demo.replay import publish_elock
from sciti.demo.world import GenerationReport, generate, plan

__all__ = [
    "PATTERNS",
    "SCALES",
    "DemoError",
    "GenerationReport",
    "LoadReport",
    "Scale",
    "World",
    "build_world",
    "generate",
    "hkid",
    "imo_check_digit",
    "imo_number",
    "imo_valid",
    "iso6346_check_digit",
    "iso6346_valid",
    "load_scale",
    "load_world",
    "plan",
    "publish_elock",
    "uscc",
    "uscc_valid",
    "world_data",
]
