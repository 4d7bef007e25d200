"""The benchmark behind scripts/bench: fake vendor, load client, process control, report."""
