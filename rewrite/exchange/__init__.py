"""One request's life: the target (fallback) loop, the attempt on one key, the pump that streams the answer."""
