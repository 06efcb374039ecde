"""Shop-R1 session-replay environment, data and rewards."""
