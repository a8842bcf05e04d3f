"""Secrets for other systems: credentials connectors and services use, kept in a store (local,
encrypted; or OpenBao / Vault), versioned, rotatable, shared with roles, every read audited."""

from sciti.access.secrets.base import NAME, SecretBackend, SecretMeta, SecretValue, check_name
from sciti.access.secrets.errors import SecretAccessDenied, SecretError, SecretNotFound, SecretStoreError
from sciti.access.secrets.keyfile import load_master_key
from sciti.access.secrets.resolver import PREFIX, env_var, reference, resolve, resolve_value
from sciti.access.secrets.service import ADMIN_ROLE, Caller, SecretsService, forget, open_backend

__all__ = [
    "ADMIN_ROLE",
    "NAME",
    "PREFIX",
    "Caller",
    "SecretAccessDenied",
    "SecretBackend",
    "SecretError",
    "SecretMeta",
    "SecretNotFound",
    "SecretStoreError",
    "SecretValue",
    "SecretsService",
    "check_name",
    "env_var",
    "forget",
    "load_master_key",
    "open_backend",
    "reference",
    "resolve",
    "resolve_value",
]
