"""The article's second program: the same map on 10 warm actor replicas.

An ActorEnvironment of 10 replicas that stay warm for 30 s after their
last item: the first map starts them (cold), a second map within the TTL
starts no process at all (warm).  Run it against a local cluster:

    build/client/troupe up --slots 10 &       # in another terminal
    PYTHONPATH=build/python /usr/bin/python3 examples/actor.py

It prints both times and the replicas that served them.
"""

import random
import time

import troupe

threshold = 101

# Here we define the actor environment's settings.
actor = troupe.ActorEnvironment(
    name="my-actor",
    replica_count=10,
    ttl_seconds=30,
    requests=troupe.Resources(cpu="125m", mem="256Mi"),
)


@actor.task
def detect_anomalies(data_point: int) -> bool:
    return data_point > threshold


def map_workflow(data):
    return troupe.map(detect_anomalies, data)


def replicas():
    """The pids of my-actor's live replicas and the items they served."""
    with troupe.Client() as c:
        for a in c.actors():
            if a.env.name == actor.name:
                return (sorted(r.pid for r in a.replicas),
                        sum(r.items_served for r in a.replicas))
    return [], 0


if __name__ == "__main__":
    data = random.sample(range(1, 101), k=100)
    for run in ("cold", "warm"):
        t0 = time.monotonic()
        out = map_workflow(data)
        t = time.monotonic() - t0
        print("%s: %d items, %d anomalies, %.2f s (replica_count=%d; a "
              "replica takes a slot, so fewer run on fewer slots)"
              % (run, len(out), sum(out), t, actor.replica_count))
    pids, served = replicas()
    print("replicas (as of the workers' last report): %d alive, pids %s, "
          "%d items served" % (len(pids), pids, served))
