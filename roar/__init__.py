"""roar: records what every command read and wrote, as a lineage DAG."""

__version__ = "0.1.0"
