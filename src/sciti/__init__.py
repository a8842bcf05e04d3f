"""SCITI: open data and risk platform for customs administrations."""

__version__ = "0.1.0"
__all__ = ["__version__"]
