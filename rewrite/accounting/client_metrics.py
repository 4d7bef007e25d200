"""Who spent what in `/metrics`: each client's requests, tokens and cost by provider and model, in all (read from
its book, rewrite/accounting/client_book.py, when scraped: nothing is counted per request here)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.core import CounterMetricFamily

TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
LABELS = ("client", "provider", "model")


class ClientMetrics:
    """A collector for the status page's registry; `rows` gives the book's `describe`."""

    def __init__(self, rows: Callable[[], list[dict]]) -> None:
        self._rows = rows

    def collect(self) -> list[CounterMetricFamily]:
        requests = CounterMetricFamily("rotator_client_requests", "Requests answered for each client (`clients`), by "
                                       "provider and model", labels=LABELS)
        tokens = CounterMetricFamily("rotator_client_tokens", "Tokens each client's answers reported, by kind (input "
                                     "includes cache reads and writes)", labels=(*LABELS, "kind"))
        cost = CounterMetricFamily("rotator_client_cost_dollars", "What each client's answers cost, in USD (answers "
                                   "covered by a login's plan, or of no known price, add nothing)", labels=LABELS)
        for row in self._rows():
            labels, total = (row["client"], row["provider"], row["model"]), row["total"]
            requests.add_metric(labels, total["requests"])
            for kind in TOKEN_KINDS:
                tokens.add_metric((*labels, kind), total[kind])
            cost.add_metric(labels, total["cost"])
        return [requests, tokens, cost]
