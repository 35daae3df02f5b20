"""A business's own time: covered hours, periods of days, what it wants reminded."""
