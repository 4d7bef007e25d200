"""Python's garbage collector, set for a long-running proxy.

A full collection walks every tracked object; once mitmproxy and Rotator have started (modules, config, pools),
about three in four of those objects live as long as the process, and walking them stalls every stream for tens
of milliseconds (scripts/bench: 40-170 ms per full collection under 100-200 paced streams). Freezing them once,
when the proxy is running, leaves a full collection only the objects traffic created (3-5x shorter).
"""

from __future__ import annotations

import gc


class FrozenStartup:
    def running(self) -> None:
        gc.collect()  # what start-up left as garbage is not kept forever
        gc.freeze()
