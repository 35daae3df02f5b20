"""The promise of a first response, counted in covered hours, and its alerts."""
