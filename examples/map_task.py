"""The article's first program: a map task, one process per item.

Flyte's map_task over `data` starts one pod per item; here each item is a
process of its own on the cluster (`python3 -m troupe.run`).  Run it
against a local cluster:

    build/client/troupe up --slots 10 &       # in another terminal
    PYTHONPATH=build/python /usr/bin/python3 examples/map_task.py

It prints the outputs and how long the map took.
"""

import random
import time

import troupe

threshold = 31


@troupe.task
def detect_anomalies(data_point: int) -> bool:
    return data_point > threshold


def map_workflow(data):
    # One process per data point, at most 10 at a time.
    return troupe.map(detect_anomalies, data, concurrency=10)


if __name__ == "__main__":
    data = random.sample(range(1, 101), k=100)
    t0 = time.monotonic()
    out = map_workflow(data)
    t = time.monotonic() - t0
    print("%d items, %d anomalies (> %d)" % (len(out), sum(out), threshold))
    print("map task, a process per item, concurrency 10: %.2f s" % t)
