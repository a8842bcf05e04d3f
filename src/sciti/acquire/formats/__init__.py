"""Format readers. Table-style readers stage rows into DuckDB; record-style readers yield Parsed/Rejected."""
