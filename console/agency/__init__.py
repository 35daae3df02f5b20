"""The agency's administration: businesses, people, assignments and hours."""
