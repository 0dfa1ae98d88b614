"""Job records: schema, encoding, and (later) provenance context capture."""
