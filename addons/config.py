"""The `rotator_config` option: loads and validates Rotator's YAML config."""

from __future__ import annotations

import logging
import sys

from mitmproxy import ctx, exceptions

from rewrite.surface import DEFAULT_PATH, ConfigError, Engine, load, source

logger = logging.getLogger("rotator")


def starting_up() -> bool:
    """Whether mitmproxy is still starting (the script is loaded for the first time, not reloaded)."""
    loader = ctx.master.addons.get("scriptloader")
    return loader is not None and not loader.is_running


def in_default_file(problem: str, given: str) -> str:
    """A problem in the config file read by default, which the user never named: the line says which file it is
    (a problem with the file as a whole already starts with its path)."""
    path = source(given)
    if given or path is None or problem.startswith(f"{path}: "):
        return problem
    return f"{path}: {problem}"


def refuse(line: str, started: bool) -> None:
    """A bad option value: at start-up, one error line and an exit before mitmproxy starts listening (it would say
    so, and exit only then; a script reloaded in a running proxy only logs it, like any addon error); at run time (e.g.
    in mitmweb's options) an OptionsError, the old value kept."""
    if started:
        raise exceptions.OptionsError(line)
    logger.error("%s", line)
    if starting_up():
        sys.exit(1)


class RotatorConfig:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = False

    def running(self) -> None:
        self.started = True

    def load(self, loader) -> None:
        loader.add_option(
            "rotator_config",
            str,
            "",
            f"Path of Rotator's YAML config (providers, key pools, streaming timeouts). Empty: {DEFAULT_PATH} "
            "if it exists, else built-in defaults (every vendor at its own URL, the client's own credential).",
        )

    def configure(self, updated: set[str]) -> None:
        if "rotator_config" not in updated:
            return
        try:
            self.engine.configure(load(ctx.options.rotator_config))  # (which checks what only the whole config can)
        except ConfigError as e:
            refuse(f"rotator_config: {in_default_file(str(e), ctx.options.rotator_config)}", self.started)
            return
        pooled = [f"{p.name} ({len(p.pool.states)} keys)" for p in self.engine.router.providers if p.pool]
        logger.info("rotator: serving %s; key pools: %s",
                    ", ".join(p.name for p in self.engine.router.providers), ", ".join(pooled) or "none")
