"""How one real-world entity looks in different source systems.

Every company and person has a small, fixed set of *forms* (official English name, abbreviated
legal suffix in capitals, a typo, the Chinese name, the other romanisation). A feed picks one form
per appearance, so the ground truth can list every form an entity takes and each appearance is
traceable to its entity. Forms are derived from the entity alone (no random state): the same world
always shows the same faces.
"""

from __future__ import annotations

import zlib
from typing import Any

from sciti.demo.entities import Company, Person

SUFFIX_SWAPS = (
    ("Co., Ltd.", "Company Limited"),
    ("Company Limited", "Co., Ltd."),
    (" Limited", " Ltd"),
    (" Ltd", " Limited"),
    (" Inc.", " Incorporated"),
    (" Pte Ltd", " Private Limited"),
    (" GmbH", " G.m.b.H."),
    (" LLC", " L.L.C."),
)


def typo(text: str) -> str:
    """One plausible keying error, chosen from the text itself: swap, drop or double a letter."""
    h = zlib.crc32(text.encode("utf-8"))
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    if len(letters) < 4:
        return text + text[-1]
    i = letters[1 + h % (len(letters) - 2)]
    kind = (h >> 8) % 3
    if kind == 0 and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def swap_suffix(name: str) -> str:
    for old, new in SUFFIX_SWAPS:
        if name.endswith(old.strip()) or old in name:
            return name.replace(old, new, 1)
    return name + " Ltd"


def _hk_address(c: Company, data: dict[str, Any], style: str) -> tuple[str, str]:
    st, dist = data["hk_streets"][c.street], data["hk_districts"][c.district]
    if style == "full":
        return f"Room {c.room:02d}, {c.floor}/F, {c.street_no} {st['en']}, {dist['en']}", dist["region"]
    if style == "abbr":
        return f"RM {c.room:02d} {c.floor}/F {c.street_no} {st['abbr']} {dist['abbr']}".upper(), dist[
            "region_abbr"
        ]
    return f"{dist['zh']}{st['zh']}{c.street_no}號{c.floor}樓{c.room:02d}室", dist["region_zh"]


def _other_address(c: Company, style: str) -> tuple[str, str]:
    if style == "zh" and c.country == "CN":
        return f"科技路{c.street_no}號", c.city
    base = f"No. {c.street_no} Industrial Road" if style != "abbr" else f"NO.{c.street_no} INDUSTRIAL RD"
    return base, c.city


def address(c: Company, data: dict[str, Any], style: str) -> tuple[str, str]:
    """(street line, city) of a company in style full | abbr | zh."""
    return _hk_address(c, data, style) if c.street >= 0 else _other_address(c, style)


def _phone_form(phone: str, style: int) -> str:
    digits = phone.replace("+", "").replace(" ", "")
    if style == 1:
        return f"{digits[:3]}-{digits[3:]}" if phone.startswith("+852") else f"00{digits}"
    if style == 2:
        return digits[3:] if phone.startswith("+852") else digits
    return phone


# Feeds ask for the same entity's forms again and again (road cargo, passengers, intelligence).
# Forms depend only on the entity's fields, so they are kept per process, compactly (tuples, not
# dicts), keyed by those fields: a new world with the same ids never sees another world's forms.
# The bound keeps the memo of a large world's worker near 100 MB; past it the memo starts afresh.
MEMO_LIMIT = 100_000
_COMPANY_MEMO: dict[tuple[Any, ...], tuple[tuple[str, ...], ...]] = {}
_PERSON_MEMO: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
COMPANY_FORM_KEYS = ("form", "name", "street", "city", "phone")


def company_forms(c: Company, data: dict[str, Any]) -> list[dict[str, str]]:
    """The faces a company shows. Form 0 is the official one; the order is stable."""
    key = (
        id(data), c.entity_id, c.country, c.en, c.tc, c.sc, c.roman_alt,
        c.street, c.street_no, c.district, c.floor, c.room, c.city, c.phone,
    )  # fmt: skip
    rows = _COMPANY_MEMO.get(key)
    if rows is None:
        if len(_COMPANY_MEMO) >= MEMO_LIMIT:
            _COMPANY_MEMO.clear()
        rows = _COMPANY_MEMO[key] = tuple(
            tuple(f[k] for k in COMPANY_FORM_KEYS) for f in _company_forms(c, data)
        )
    return [dict(zip(COMPANY_FORM_KEYS, r, strict=True)) for r in rows]


def _company_forms(c: Company, data: dict[str, Any]) -> list[dict[str, str]]:
    full, abbr = address(c, data, "full"), address(c, data, "abbr")  # each used twice below
    forms = [
        {"form": "official", "name": c.en, "street": full[0], "city": full[1], "phone": c.phone},
        {
            "form": "abbreviated",
            "name": swap_suffix(c.en).upper(),
            "street": abbr[0],
            "city": abbr[1],
            "phone": _phone_form(c.phone, 1),
        },
        {
            "form": "typo",
            "name": typo(c.en),
            "street": full[0],
            "city": full[1],
            "phone": _phone_form(c.phone, 2),
        },
    ]
    if c.tc:
        street, city = address(c, data, "zh")
        forms.append(
            {
                "form": "chinese",
                "name": c.tc if c.country == "HK" else c.sc,
                "street": street,
                "city": city,
                "phone": _phone_form(c.phone, 2),
            }
        )
        forms.append(
            {
                "form": "romanisation",
                "name": c.roman_alt,
                "street": abbr[0],
                "city": abbr[1],
                "phone": c.phone,
            }
        )
    return forms


def person_forms(p: Person, data: dict[str, Any]) -> list[dict[str, str]]:
    """Names of a person as different systems write them: travel document, romanisations, native script."""
    key = (id(data), p.entity_id, p.surname, p.given, p.foreign, p.nationality)
    rows = _PERSON_MEMO.get(key)
    if rows is None:
        if len(_PERSON_MEMO) >= MEMO_LIMIT:
            _PERSON_MEMO.clear()
        rows = _PERSON_MEMO[key] = tuple((f["form"], f["name"]) for f in _person_forms(p, data))
    return [{"form": form, "name": name} for form, name in rows]


def _person_forms(p: Person, data: dict[str, Any]) -> list[dict[str, str]]:
    if p.foreign:
        given, family, native = p.foreign
        return [
            {"form": "document", "name": f"{family.upper()} {given.upper()}"},
            {"form": "western", "name": f"{given} {family}"},
            {"form": "native", "name": native},
            {"form": "typo", "name": typo(f"{given} {family}")},
        ]
    tc, sc, py, yue = data["surnames"][p.surname]
    g1, g2 = (data["given_chars"][i] for i in p.given)
    hk = p.nationality == "HK"
    # HK identity cards use Cantonese romanisation, Mainland documents Hanyu Pinyin.
    doc_sur, doc_given = (yue, f"{g1[3].title()} {g2[3].title()}") if hk else (py, f"{g1[2].title()}{g2[2]}")
    alt_sur, alt_given = (py, f"{g1[2].title()}{g2[2]}") if hk else (yue, f"{g1[3].title()} {g2[3].title()}")
    return [
        {"form": "document", "name": f"{doc_sur.upper()} {doc_given.upper()}"},
        {"form": "western", "name": f"{doc_given.replace(' ', '-', 1) if hk else doc_given} {doc_sur}"},
        {"form": "native", "name": f"{tc}{g1[0]}{g2[0]}" if hk else f"{sc}{g1[1]}{g2[1]}"},
        {"form": "romanisation", "name": f"{alt_sur} {alt_given}"},
        {"form": "typo", "name": typo(f"{doc_sur} {doc_given}")},
    ]
