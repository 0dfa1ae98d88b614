"""Step 2: fit y = a*x + b to clean.csv by least squares; write the model as JSON."""

import csv
import json
import sys

source, dest = sys.argv[1], sys.argv[2]
with open(source, newline="") as f:
    points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
n = len(points)
mx = sum(x for x, _ in points) / n
my = sum(y for _, y in points) / n
a = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
with open(dest, "w") as f:
    json.dump({"a": round(a, 6), "b": round(my - a * mx, 6), "points": n}, f, indent=2)
    f.write("\n")
