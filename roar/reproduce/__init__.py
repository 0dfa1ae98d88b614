"""`roar reproduce`: the recipe that remakes an artifact, job or session, and running it
in a fresh directory with the outputs checked against the recorded hashes (docs/reproduce.md)."""
