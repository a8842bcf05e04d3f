"""The national currency and the cash reporting threshold, as the settings give them (decision 0111).

A reference is built for one ``National`` and keeps it: the near-threshold counts it holds and the
threshold ratios computed with it use the same threshold, in batch and in real time. The words
that quote them (feature explanations, rule reasons) take the same values through
:attr:`National.words`, the placeholders a template may use.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sciti.settings import Settings

# The placeholders reason and explanation templates may use, beyond the record's own columns.
PLACEHOLDERS = ("national_currency", "cash_reporting_threshold")


@dataclass(frozen=True)
class National:
    currency: str  # ISO 4217, as the settings checked it
    cash_threshold: Decimal  # in ``currency``

    @classmethod
    def of(cls, settings: Settings) -> National:
        return cls(settings.national_currency, _plain(settings.cash_reporting_threshold))

    @property
    def words(self) -> dict[str, Any]:
        """The placeholders' values, by name."""
        return {"national_currency": self.currency, "cash_reporting_threshold": self.cash_threshold}

    def params(self) -> dict[str, str]:
        """As a saved reference's parameters keep it (risk.reference_meta ``params``)."""
        return {"national_currency": self.currency, "cash_reporting_threshold": str(self.cash_threshold)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> National:
        """The one a saved reference was built for. One saved before decision 0111 has only
        features.yaml's ``currency_threshold``, and was built for HKD."""
        threshold = params.get("cash_reporting_threshold", params.get("currency_threshold"))
        return cls(
            str(params.get("national_currency", DEFAULT.currency)),
            DEFAULT.cash_threshold if threshold is None else _plain(Decimal(str(threshold))),
        )

    def said(self) -> str:
        """How a message names it: HKD 120,000."""
        amount = f"{self.cash_threshold:,f}"
        return f"{self.currency} {amount.rstrip('0').rstrip('.') if '.' in amount else amount}"


def _plain(amount: Decimal) -> Decimal:
    """120000, never 1.2E+5 (SCITI_CASH_REPORTING_THRESHOLD=1.2e5): a reason may quote it as it is."""
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount.normalize()


# The settings' defaults: what a reference saved before decision 0111 was built for, and what a
# caller without settings (a rule checked from a file, the KCS evaluation) gets.
DEFAULT = National(
    Settings.model_fields["national_currency"].default,
    _plain(Settings.model_fields["cash_reporting_threshold"].default),
)

__all__ = ["DEFAULT", "PLACEHOLDERS", "National"]
