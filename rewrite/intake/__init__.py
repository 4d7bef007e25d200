"""How a request gets in: the loopback server mitmproxy hands flows to, the in-memory pipe, client keys,
large bodies."""
