"""A request's lifecycle: the events the spine (rewrite/exchange/) announces at fixed points (`events.py`), the
plug-ins that subscribe to them (`hooks.py`), who pays for each target (`payer.py`), what refusals taught
(`lessons.py`), and what an engine tells its plug-ins (`setting.py`)."""
