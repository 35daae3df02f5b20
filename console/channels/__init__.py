"""The ways out: lines, providers, mail, queued notices and their delivery."""
