"""scripts/with-rotator: runs one tool through Rotator, its environment prepared for it alone (README, "Pointing
tools at Rotator"). Standard library only, any Python 3.9+: a user runs it before anything is installed."""
