"""Multi-factor authentication: TOTP (RFC 6238) with replay rejection, and one-time recovery codes.

The TOTP secret is stored encrypted (AES-256-GCM, key file of the instance, see ``keys.py``) and
bound to its account through the associated data, so a secret copied onto another row does not
decrypt. A code is accepted for the current 30-second step or one step either side (clock drift),
and never twice: the last accepted step is stored and only a later step is accepted.
Recovery codes are random (about 80 bits), shown once, stored as SHA-256 and usable once each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sciti.access.errors import InvalidMfaCode, MfaError
from sciti.access.keys import decrypt, encrypt
from sciti.ops import User
from sciti.ops.account_tables import MfaSecret, RecoveryCode

ISSUER = "SCITI"
DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1  # accept the previous and next step too
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # 31 symbols; 16 of them ~ 79 bits
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class Enrolment:
    """A new, not yet confirmed secret: shown once as base32 and as an otpauth:// URI (QR code)."""

    secret: str
    uri: str


def totp_at(secret: bytes, unix_time: int, *, digits: int = DIGITS, algorithm: str = "sha1") -> str:
    """The TOTP value of a raw secret at a time (RFC 6238 with T0 = 0, X = 30 seconds)."""
    otp = _totp(base64.b32encode(secret).decode("ascii"), digits=digits, algorithm=algorithm)
    return otp.at(unix_time)


def _totp(secret_b32: str, *, digits: int = DIGITS, algorithm: str = "sha1") -> pyotp.TOTP:
    return pyotp.TOTP(secret_b32, digits=digits, digest=_DIGESTS[algorithm], interval=STEP_SECONDS)


def _aad(user_id: int) -> bytes:
    return f"sciti-mfa:{user_id}".encode()


def _row(session: Session, user_id: int) -> MfaSecret | None:
    return session.get(MfaSecret, user_id)


def mfa_enabled(session: Session, user_id: int) -> bool:
    """Whether login needs a second factor (a confirmed secret exists)."""
    row = _row(session, user_id)
    return row is not None and row.confirmed_at is not None


def enrol(session: Session, user: User, key: bytes) -> Enrolment:
    """Start enrolment: a fresh secret, stored encrypted and unconfirmed until ``confirm``."""
    row = _row(session, user.id)
    if row is not None and row.confirmed_at is not None:
        raise MfaError(
            f"user {user.username!r} already has MFA",
            remedy="disable it first (with a current code), or ask an administrator to reset it",
        )
    secret_b32 = pyotp.random_base32(32)  # 160 bits, the RFC 4226 recommendation
    sealed = encrypt(key, secret_b32.encode("ascii"), _aad(user.id))
    if row is None:
        session.add(MfaSecret(user_id=user.id, secret_encrypted=sealed, last_step=0))
    else:
        row.secret_encrypted, row.last_step = sealed, 0
    session.flush()
    uri = _totp(secret_b32).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return Enrolment(secret=secret_b32, uri=uri)


def _accept_code(session: Session, row: MfaSecret, key: bytes, code: str, now: datetime) -> bool:
    """Check a TOTP code and burn its step (atomically: two requests cannot both use one code)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return False
    otp = _totp(decrypt(key, row.secret_encrypted, _aad(row.user_id)).decode("ascii"))
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > row.last_step and hmac.compare_digest(otp.at(step * STEP_SECONDS), code):
            burned = session.execute(
                update(MfaSecret)
                .where(MfaSecret.user_id == row.user_id, MfaSecret.last_step < step)
                .values(last_step=step)
            )
            session.expire(row)
            return bool(getattr(burned, "rowcount", 0))
    return False


def new_recovery_codes(session: Session, user_id: int, now: datetime) -> list[str]:
    """Replace the recovery codes of an account with new ones; returns them (shown once)."""
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)):
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    session.add_all(RecoveryCode(user_id=user_id, code_hash=_code_hash(c), created_at=now) for c in codes)
    session.flush()
    return codes


def _code_hash(code: str) -> str:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def confirm(session: Session, user: User, key: bytes, code: str, now: datetime) -> list[str]:
    """Finish enrolment with a code from the app; returns the recovery codes (shown once)."""
    row = _row(session, user.id)
    if row is None or row.confirmed_at is not None:
        raise MfaError(
            "there is no MFA enrolment to confirm",
            remedy="start one with POST /api/v1/mfa/enrol",
        )
    if not _accept_code(session, row, key, code, now):
        raise InvalidMfaCode()
    row.confirmed_at = now
    return new_recovery_codes(session, user.id, now)


def verify_second_factor(session: Session, user: User, key: bytes, code: str, now: datetime) -> str:
    """Accept a TOTP code or an unused recovery code; returns which one ('totp' or 'recovery')."""
    row = _row(session, user.id)
    if row is None or row.confirmed_at is None:
        raise MfaError(f"user {user.username!r} has no MFA", remedy="enrol with POST /api/v1/mfa/enrol")
    if _accept_code(session, row, key, code, now):
        return "totp"
    used = session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if getattr(used, "rowcount", 0):
        return "recovery"
    raise InvalidMfaCode()


def recovery_codes_left(session: Session, user_id: int) -> int:
    rows = session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return sum(1 for _ in rows)


def remove_mfa(session: Session, user_id: int) -> bool:
    """Delete the secret and the recovery codes (user turning MFA off, or administrator reset)."""
    row = _row(session, user_id)
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id)):
        session.delete(old)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


__all__ = [
    "Enrolment",
    "confirm",
    "enrol",
    "mfa_enabled",
    "new_recovery_codes",
    "recovery_codes_left",
    "remove_mfa",
    "totp_at",
    "verify_second_factor",
]
