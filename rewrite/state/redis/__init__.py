"""State several workers share in Redis (state.redis): the key pools' decisions and the conversation store."""
