"""Step 3: the model's root-mean-square error on clean.csv; write it to report.txt."""

import csv
import json
import math
import sys

model_path, data_path, dest = sys.argv[1], sys.argv[2], sys.argv[3]
with open(model_path) as f:
    model = json.load(f)
with open(data_path, newline="") as f:
    points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
rmse = math.sqrt(sum((model["a"] * x + model["b"] - y) ** 2 for x, y in points) / len(points))
with open(dest, "w") as f:
    f.write(f"model: y = {model['a']} * x + {model['b']}\nrmse: {rmse:.4f} on {len(points)} points\n")
