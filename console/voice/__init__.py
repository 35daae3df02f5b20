"""The phone in the console: SIP credentials, whom a call rings, agent states and the record of every call."""
