"""Artifacts: content hashing, the hash cache, composite (directory) artifacts."""
