"""Settings, the database and its drivers, errors, languages, clock, jobs, rate limits."""
