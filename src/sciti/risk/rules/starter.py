"""The starter rules shipped with SCITI (``risk/data/rules/*.yaml``): examples analysts copy and adapt.

They are loaded like any other rule, as drafts by the user who loads them, and need approval by
someone else before they take effect.
"""

from __future__ import annotations

from importlib import resources

from sciti.risk.rules.definition import RuleDef, parse_rule


def starter_rule_texts() -> dict[str, str]:
    """File name -> YAML text of every starter rule."""
    folder = resources.files("sciti.risk").joinpath("data/rules")
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    }


def load_starter_rules() -> list[RuleDef]:
    return [parse_rule(text) for text in starter_rule_texts().values()]


__all__ = ["load_starter_rules", "starter_rule_texts"]
