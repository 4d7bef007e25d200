"""The benchmark's same-process comparison of the Redis pick with the local one (cluster.py).

Loaded before addons/rotator.py (`mitmdump -s pick_switch.py -s addons/rotator.py`) in a Rotator whose config names
a Redis: a request with `x-bench-pick: local` has its key picked by its pool alone, as without `state.redis`; any
other request through Redis. Two processes of the same Rotator differ by a few % of CPU for their whole life (as
much as the pick's goal), so the two picks are compared within one process and one job, in alternating blocks of
sequential requests, one request at a time.
"""

from mitmproxy import ctx, http

HEADER = "x-bench-pick"
_shared: dict[int, object] = {}  # id(pool) -> its shared decisions, while its requests are picked locally


def requestheaders(flow: http.HTTPFlow) -> None:
    local = flow.request.headers.pop(HEADER, "") == "local"
    config = ctx.master.addons.get("rotatorconfig")  # (addons/config.py's, which holds the engine)
    if config is None:
        return
    for provider in config.engine.router.providers:
        pool = provider.pool
        if pool is None:
            continue
        if local and pool.shared is not None:
            _shared[id(pool)] = pool.shared
            pool.shared = None
        elif not local and pool.shared is None and id(pool) in _shared:
            pool.shared = _shared.pop(id(pool))
