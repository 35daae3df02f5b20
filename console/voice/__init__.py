"""The phone in the console: credentials, whom a call rings, agent states, every call."""
