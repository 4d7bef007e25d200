"""Talking to vendors: the httpx client, the lean HTTP/1.1 transport, the egress proxy, bounded body decoding,
WebSockets."""
