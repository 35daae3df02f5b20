"""The demo agency and its simulator: outside the core, never imported by it."""
