"""Run the peer library on the test set, inside its own venv (.venv-peer), so the station never has it.

stdin: a JSON list of sentences. stdout: {"outputs": [...], "seconds": time for one pass, best of N}.
"""

import json
import sys
import time

from vietnormalizer import VietnameseNormalizer

sentences = json.load(sys.stdin)
normalizer = VietnameseNormalizer()
outputs = [normalizer.normalize(s) for s in sentences]  # also the warm-up pass
best = float("inf")
for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
    t0 = time.perf_counter()
    for s in sentences:
        normalizer.normalize(s)
    best = min(best, time.perf_counter() - t0)
json.dump({"outputs": outputs, "seconds": best}, sys.stdout, ensure_ascii=False)
