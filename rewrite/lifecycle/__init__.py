"""A request's lifecycle, the door between the spine (rewrite/exchange/) and the plug-ins: the events the spine
announces at fixed points (`events.py`), the read-only views they carry (`views.py`), the plug-ins that subscribe to
them and the guarded dispatch (`hooks.py`), who pays for each target (`payer.py`), what refusals taught
(`lessons.py`), and what an engine tells its plug-ins (`setting.py`)."""
