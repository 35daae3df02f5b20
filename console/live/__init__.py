"""Events written with each change, delivered live to the consoles that may see them."""
