"""What an engine tells its plug-ins when it makes them and whenever its configuration changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewrite.accounting.prices import PriceTable
from rewrite.config import Config

if TYPE_CHECKING:
    from rewrite.routing.router import Router


@dataclass
class Setting:
    config: Config = field(default_factory=Config)
    prices: PriceTable = field(default_factory=PriceTable)
    router: Router | None = None  # None: no routes, the called provider serves (unit tests)
