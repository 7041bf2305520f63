#!/usr/bin/env python3
"""test_loadtest.py: the article's load-tester against the article's API,
unchanged but for its URL (and a shortened ramp from ramp.json), through the
same driver as tools/run-article.sh. Checks the chart's figures:
 - flows/api.json (delay node in "delay" mode: each request waits 100 ms on its
   own) keeps up with the 20 calls/s target, as Node-RED does;
 - flows/api-bottleneck.json (rate mode, 1 msg per 100 ms) caps one instance
   at 10 calls/s, and two replicas reach about 20.
Usage: test_loadtest.py CARMINE OUTDIR. Prints "ok"/"not ok" lines."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import article  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from tap import check  # noqa: E402


def main():
    carmine, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(HERE, "ramp.json")) as f:
        ramp = json.load(f)["ramp"]
    flows = lambda name: os.path.join(ROOT, "flows", name)  # noqa: E731
    runs = [article.Scenario(carmine, out, "api-1", flows("api.json"), 1, ramp),
            article.Scenario(carmine, out, "bottleneck-1", flows("api-bottleneck.json"), 1, ramp),
            article.Scenario(carmine, out, "bottleneck-2", flows("api-bottleneck.json"), 2, ramp)]
    article.run_all(runs, progress=sys.stderr)
    expected_targets = [1000 / r for r in ramp if r != "stop"]
    for run in runs:
        check("%s: ran" % run.name, run.error is None, str(run.error))
    for run in runs:
        if run.error:
            continue
        target = [y for _, y in article.series(run.state, article.TARGET)]
        achieved = [y for _, y in article.series(run.state, article.ACHIEVED)]
        check("%s: the target series is the ramp (1000 / delay)" % run.name,
              target == expected_targets, "target %r" % target)
        check("%s: achieved points arrive every second" % run.name, len(achieved) >= 15, "%d points" % len(achieved))
    a1, b1, b2 = ([y for _, y in article.series(r.state, article.ACHIEVED)] if not r.error else [0] for r in runs)
    check("api.json, one instance: achieved ~ target 20/s (17-21)", 17 <= a1[-1] <= 21, "last achieved %.2f" % a1[-1])
    check("api-bottleneck.json, one instance: capped at ~10/s (8.5-11)", 8.5 <= b1[-1] <= 11,
          "last achieved %.2f" % b1[-1])
    check("api-bottleneck.json, one instance: never near the target", max(b1) <= 12, "peak %.2f" % max(b1))
    check("api-bottleneck.json, two replicas: ~20/s (17-21)", 17 <= b2[-1] <= 21, "last achieved %.2f" % b2[-1])
    return tap.failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
