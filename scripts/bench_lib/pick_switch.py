"""The benchmark's same-process comparison of the Redis pick with the local one (cluster.py).

Loaded before addons/rotator.py (`mitmdump -s pick_switch.py -s addons/rotator.py`) in a Rotator whose config names
a Redis: a request with `x-bench-pick: local` has its key picked by its pool alone, as without `state.redis`; with
`x-bench-pick: unix`, through the same Redis on its Unix socket (the `unix://` URL in $ROTATOR_BENCH_UNIX_REDIS, a
link of its own); with `x-bench-pick: trip`, picked locally, and one bare round trip (a PING, its reply read and
dropped) on the connection the picks go on, written where the pick is sent: what a round trip to Redis costs this
process on this machine whatever it carries, the floor under the pick's own work; any other (`x-bench-pick: redis`,
as cluster.py sends it) through the config's Redis. Every variant carries the header, so that each pays alike for
reading it (measured: one header more costs a request some 60 calls of header lookups, about 75 k instructions: 0.5 %
of a request, some 40 % of what the pick adds). Two processes of the same Rotator differ by a few % of CPU for
their whole life (as much as the pick's goal), so the picks are compared within one process and one job, in
alternating blocks of sequential requests, one request at a time.
"""

import os

from mitmproxy import ctx, http

HEADER = "x-bench-pick"
UNIX_URL = os.environ.get("ROTATOR_BENCH_UNIX_REDIS")
_shared: dict[int, object] = {}  # id(pool) -> its decisions through the config's Redis
_unix: dict[int, object] = {}  # id(pool) -> its decisions through the Unix socket's link
_unix_link: list = []  # (that link, once made)
PING = b"*1\r\n$4\r\nPING\r\n"
_TRIP = "bench_trip"  # (flow.metadata: the pipe a request's trip goes on)


def requestheaders(flow: http.HTTPFlow) -> None:
    mode = flow.request.headers.pop(HEADER, "")
    config = ctx.master.addons.get("rotatorconfig")  # (addons/config.py's, which holds the engine)
    if config is None:
        return
    for provider in config.engine.router.providers:
        pool = provider.pool
        if pool is None or (pool.shared is None and id(pool) not in _shared):
            continue
        shared = _shared.setdefault(id(pool), pool.shared)
        if mode == "local":
            pool.shared = None
        elif mode == "trip":
            pool.shared = None
            if _TRIP not in flow.metadata:  # (one a request; the link's connection, made by the picks)
                flow.metadata[_TRIP] = shared.shared.pipe  # (RedisDecisions' link, rewrite/state/redis/link.py)
        elif mode == "unix" and UNIX_URL:
            pool.shared = _unix.get(id(pool)) or _unix.setdefault(id(pool), _through_unix(pool))
        else:
            pool.shared = shared


def request(flow: http.HTTPFlow) -> None:
    """The trip, in the request hook (this addon's runs just before Rotator's, which sends the pick)."""
    pipe = flow.metadata.pop(_TRIP, None)
    if pipe is not None:
        pipe.submit(_dropped, PING)


def _dropped(reply) -> None:
    pass


def _through_unix(pool):
    from rewrite.state.redis.shared import SharedState

    if not _unix_link:
        _unix_link.append(SharedState.from_url(UNIX_URL))
        _unix_link[0].start()
    return _unix_link[0].pool(pool)
