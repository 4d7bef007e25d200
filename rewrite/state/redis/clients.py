"""Who spent what, shared by every worker through Redis (client_scripts.py holds the Lua, and says how it is kept):
the client's part of a shared pick (`pick_arg`: its budget and limits, checked in the same step as the key is picked),
what a request spent written once it is done (`spend`: at once on the pipe, as a quota window's usage is), and every
client's figures read about once a second into the clients' book (`observe`), which the status page,
`rotator.clients` and `/metrics` show.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rewrite.accounting.client_book import FIGURES, PERIODS, ClientBook, ClientSpent, Figures, blank
from rewrite.accounting.client_rules import ClientHold
from rewrite.state.redis.client_scripts import SPEND
from rewrite.state.redis.link import pairs
from rewrite.state.redis.names import CLIENTS, CLIENTS_FLYING
from rewrite.state.redis.writes import write_soon

if TYPE_CHECKING:
    from rewrite.state.redis.link import RedisLink

FLIGHT_SECONDS = 900  # a request in flight whose worker died stops counting in its client's requests limit after this
RS, US = "\x1e", "\x1f"  # (between a field's client, row and period; a row's provider and model)
NO_CLIENT = "-"  # the pick's argument without a client's rules to check
KEYS = [CLIENTS, CLIENTS_FLYING]  # (every pool's pick has them, before its re-checks and windows)


def pick_arg(hold: ClientHold | None) -> str:
    """The pick's last argument (client_scripts.PICK_CLIENT): the client's rules, with each period's end."""
    if hold is None:
        return NO_CLIENT
    ends = hold.ends
    said = "".join(f"{i}:{r.unit}:{r.amount!r}:{r.per or ''}:{int(ends[r.per] * 1000) if r.per else 0},"
                   for i, r in enumerate(hold.rules.rules, 1))
    return f"{FLIGHT_SECONDS * 1000}|{said}|{hold.rules.name}{RS}{hold.flight}"


def refusal_of(reply: bytes | str, hold: ClientHold, now: float):
    """The client's refusal the pick answered ("client|rule|used")."""
    text = reply.decode() if isinstance(reply, bytes) else reply
    _, index, used = text.split("|")
    rule = hold.rules.rules[int(index) - 1]
    return hold.rules.refused(rule, float(used), now)


class SharedClients:
    def __init__(self, shared: RedisLink, book: ClientBook) -> None:
        self.shared, self.book = shared, book
        self._seen: object = None  # the figures last read (the book is replaced only when they changed)

    def spend(self, client: str, flight: str, rows: dict[tuple[str, str], Figures], now: float) -> None:
        """What a request of `client` spent, by (provider, model), into every worker's figures; it is no longer in
        flight (`flight` "": it was never counted in flight)."""
        ends = "|".join(str(int(e * 1000)) for e in self.book.ends(now).values())
        args: list[str | int | float] = [client, flight, ends]
        for (provider, model), figures in rows.items():
            args += [f"{provider}{US}{model}", "|".join(repr(float(v)) for v in figures)]
        write_soon(self.shared, SPEND, lambda _: (KEYS, args))

    async def observe(self) -> None:
        """Every client's figures as every worker counted them, into the book."""
        [listed] = await self.shared.read(("HGETALL", CLIENTS))
        listed = pairs(listed)
        if not listed or listed == self._seen:  # (none yet: what the state file kept stays shown)
            return
        self._seen = listed
        rows: dict[str, dict[tuple[str, str], ClientSpent]] = {}
        sums: dict[str, ClientSpent] = {}
        for raw_field, raw_value in listed:
            field, value = _text(raw_field), _text(raw_value).split("|")
            client, row, per = (field.split(RS) + ["", "", ""])[:3]
            if len(value) != len(FIGURES) + 1 or (per not in PERIODS and per != "total"):
                continue
            if row == "*":
                spent = sums.setdefault(client, ClientSpent())
            else:
                provider, _, model = row.partition(US)
                spent = rows.setdefault(client, {}).setdefault((provider, model), ClientSpent())
            figures = blank()
            figures[:] = [float(v) for v in value[1:]]
            if per == "total":
                spent.total = figures
            else:
                spent.periods[per] = (int(value[0]) / 1000, figures)
        self.book.adopt(rows, sums)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
