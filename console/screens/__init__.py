"""What one page shows, loaded in a fixed number of statements."""
