"""The workspace (.roar/): record files and the SQLite index."""
