"""What the Prometheus metrics read when scraped (rewrite/accounting/metrics.py registers it): each pooled key's
state, in-flight requests, quota windows and prompt cache, and each subscription login's plan windows. Keys and
logins masked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

KEY_STATES = ("ready", "resting", "out")


class Live:
    """What is read when scraped: each pooled key's state, requests in flight, quota windows and prompt cache, and
    each provider's; each login's plan windows and whether it is exhausted."""

    def __init__(self, pools: Callable[[], list[dict]], in_flight: Callable[[], dict[str, int]],
                 logins: Callable[[], list[dict]], store_reads: Callable[[], int] = int) -> None:
        self._pools, self._in_flight, self._logins, self._store_reads = pools, in_flight, logins, store_reads

    def collect(self):
        state = GaugeMetricFamily("rotator_key_state", "1 for each pooled key's current state (keys masked)",
                                  labels=("provider", "key", "state"))
        busy = GaugeMetricFamily("rotator_key_in_flight", "Requests in flight on each pooled key (keys masked)",
                                 labels=("provider", "key"))
        conversations = GaugeMetricFamily("rotator_key_conversations", "Conversations bound to each pooled key and "
                                          "live (keys masked)", labels=("provider", "key"))
        attempts = CounterMetricFamily("rotator_key_requests", "Upstream attempts made with each pooled key (keys "
                                       "masked)", labels=("provider", "key"))
        for pool in self._pools():
            for key in pool["keys"]:
                for name in KEY_STATES:
                    state.add_metric((pool["provider"], key["key"], name), 1 if key["state"] == name else 0)
                busy.add_metric((pool["provider"], key["key"]), key["in_flight"])
                conversations.add_metric((pool["provider"], key["key"]), key.get("conversations", 0))
                if isinstance(made := (key.get("total") or {}).get("requests"), int):
                    attempts.add_metric((pool["provider"], key["key"]), made)
        flights = GaugeMetricFamily("rotator_in_flight", "Requests (streams or not) in flight, by provider",
                                    labels=("provider",))
        for provider, count in sorted(self._in_flight().items()):
            flights.add_metric((provider,), count)
        reads = CounterMetricFamily("rotator_conversation_store_blocking_reads", "Reads of the conversation store "
                                    "(field cache, Responses continuity) that missed this worker's copy and waited "
                                    "for Redis with state.redis (the event loop waits meanwhile)",
                                    value=self._store_reads())
        return [state, busy, conversations, attempts, flights, reads, *self._windows(), *self._cache(), *self._plans()]

    def _windows(self) -> list[GaugeMetricFamily]:
        labels = ("provider", "key", "window", "unit")
        left = GaugeMetricFamily("rotator_key_window_remaining", "What is left of each pooled key's quota window "
                                 "(by quota group, or a cap's), as its answers reported it and Rotator counted since "
                                 "(keys masked)", labels=labels)
        limit = GaugeMetricFamily("rotator_key_window_limit", "What each pooled key's quota window holds "
                                  "(keys masked)", labels=labels)
        resets = GaugeMetricFamily("rotator_key_window_reset_timestamp_seconds", "When each pooled key's quota "
                                   "window resets (keys masked)", labels=labels)
        for pool in self._pools():
            for key in pool["keys"]:
                for w in key.get("windows") or ():
                    at = (pool["provider"], key["key"], w["window"], w["unit"])
                    left.add_metric(at, w["remaining"])
                    if w.get("limit"):
                        limit.add_metric(at, w["limit"])
                    resets.add_metric(at, datetime.fromisoformat(w["resets_at"].replace("Z", "+00:00")).timestamp())
        return [left, limit, resets]

    def _cache(self) -> list:
        labels = ("provider", "key")
        tokens = CounterMetricFamily("rotator_key_prompt_tokens", "Input tokens each pooled key's answers reported, "
                                     "and of them those read from the vendor's prompt cache and written to it, by kind "
                                     "(input_tokens, cache_read_tokens, cache_write_tokens; keys masked)",
                                     labels=(*labels, "kind"))
        cold = CounterMetricFamily("rotator_key_cache_cold_cost_usd", "What each pooled key's cache writes cost above "
                                   "reading the same tokens from the cache, in USD: the price of its cold prefixes "
                                   "(keys masked)", labels=labels)
        share = GaugeMetricFamily("rotator_key_cache_read_ratio", "Share of each pooled key's input tokens read from "
                                  "the vendor's prompt cache, in the last hour (period 1h) and in all (keys masked)",
                                  labels=(*labels, "period"))
        for pool in self._pools():
            for key in pool["keys"]:
                at, total, shares = (pool["provider"], key["key"]), key.get("total"), key.get("cache_read_share")
                if total is None or shares is None:
                    continue
                for kind in ("input_tokens", "cache_read_tokens", "cache_write_tokens"):
                    tokens.add_metric((*at, kind), total[kind])
                cold.add_metric(at, total["cold_cost"])
                for period, name in (("1h", "last_hour"), ("all", "total")):
                    if shares[name] is not None:
                        share.add_metric((*at, period), shares[name])
        return [tokens, cold, share]

    def _plans(self) -> list[GaugeMetricFamily]:
        used = GaugeMetricFamily("rotator_login_window_used_ratio", "Share of each subscription login's plan window "
                                 "used, as its last answer reported (logins masked)",
                                 labels=("provider", "login", "window"))
        resets = GaugeMetricFamily("rotator_login_window_reset_timestamp_seconds", "When each subscription login's "
                                   "plan window resets (logins masked)", labels=("provider", "login", "window"))
        spent = GaugeMetricFamily("rotator_login_exhausted", "1 while a subscription login is known exhausted (for "
                                  "every model, or for some; logins masked)", labels=("provider", "login"))
        for provider in self._logins():
            for login in provider["logins"]:
                labels = (provider["provider"], login["login"])
                for window in login["windows"]:
                    if window.get("used") is not None:
                        used.add_metric((*labels, window["name"]), window["used"])
                    if window.get("resets_at"):
                        when = datetime.fromisoformat(window["resets_at"].replace("Z", "+00:00")).timestamp()
                        resets.add_metric((*labels, window["name"]), when)
                spent.add_metric(labels, 1 if login["exhausted"] else 0)
        return [used, resets, spent]
