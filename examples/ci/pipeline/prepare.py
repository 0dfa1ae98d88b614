"""Step 1: drop the rows of raw.csv that have no number in them; write clean.csv."""

import csv
import sys

source, dest = sys.argv[1], sys.argv[2]
with open(source, newline="") as f:
    rows = [r for r in csv.DictReader(f) if r["x"].strip() and r["y"].strip()]
with open(dest, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=["x", "y"])
    writer.writeheader()
    writer.writerows({"x": float(r["x"]), "y": float(r["y"])} for r in rows)
print(f"{len(rows)} rows kept")
