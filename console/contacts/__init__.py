"""The customer card: one person per business, classes, import and privacy."""
