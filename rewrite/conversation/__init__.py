"""State carried between turns: the field cache (opaque reasoning state) and Responses continuity."""
