"""Where state lives: the pool records that survive a restart and the key-value store conversation state uses."""
