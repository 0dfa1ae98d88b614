"""The lineage DAG: refs, graph building, lineage queries, staleness."""
