"""The collector addon: what exists once the proxy runs is frozen, so full collections skip it."""

import gc

from addons.collector import FrozenStartup


def test_running_freezes_what_start_up_left_alive():
    gc.unfreeze()
    alive_at_start_up = [object() for _ in range(3)] + [[] for _ in range(1000)]
    try:
        FrozenStartup().running()
        assert gc.get_freeze_count() >= len(alive_at_start_up)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in alive_at_start_up[3:])
    finally:
        gc.unfreeze()
