"""Hand-offs to the owner: tasks, their promise, notices, signed links, reminders."""
