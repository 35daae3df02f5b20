"""A lead's life: queue, claim, calls, replies, scripts, feedback and surveys."""
