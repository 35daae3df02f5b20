"""How leads arrive: a module per provider, their signatures, the arrival path."""
