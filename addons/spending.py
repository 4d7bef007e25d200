"""Who spent what, from mitmproxy: the `rotator.clients` command, and the clients' book kept in the state file.

The book is the clients plug-in's (rewrite/plugins/clients.py: counted as each request is answered); on each config
(re)load this addon has the engine's store keep it (rewrite/state/kept.py, written in the pools' batches), after the
pools' state (addons/pools.py). The status page and `/metrics` read the same book (addons/status.py).
"""

from __future__ import annotations

import json
import time

from mitmproxy import command

from rewrite.surface import CLIENTS_SCOPE, ClientBook, Engine, book_of, client_budgets, client_table


class Spending:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def book(self) -> ClientBook | None:
        return book_of(self.engine.plugin("clients"))

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" in updated and (book := self.book) is not None:
            self.engine.kept.keep(CLIENTS_SCOPE, book)

    def rows(self) -> list[dict] | None:
        """Each client's rows (None: no client configured)."""
        book = self.book
        return book.describe() if book is not None and self.engine.config.clients else None

    def budgets(self) -> list[dict] | None:
        """Each configured client's budget and limits and what it used of them (None: no client configured)."""
        book = self.book
        if book is None or not self.engine.config.clients:
            return None
        return client_budgets(self.engine.config.clients, book.spent, time.time())

    @command.command("rotator.clients")
    def clients(self, fmt: str = "table") -> str:
        """Each client's requests, tokens (input, output, cache read and write) and cost, by provider and model, this
        hour, today and this month (UTC) and in all; a login's answers covered by its plan. fmt: table or json."""
        rows = self.rows() or []
        return json.dumps(rows, indent=2) if fmt == "json" else client_table(rows)
