"""Key pools: strategies, cooldowns, leases, usage counters, status and persistence hooks (see keypool.py)."""

from rewrite.pool.key_state import fingerprint, mask
from rewrite.pool.keypool import STALL_REST, STALL_REST_MAX, KeyPool, Lease, Pick, Resting, name_keys
from rewrite.pool.strategies import STRATEGIES

__all__ = ["STALL_REST", "STALL_REST_MAX", "STRATEGIES", "KeyPool", "Lease", "Pick", "Resting", "fingerprint",
           "mask", "name_keys"]
