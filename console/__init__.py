"""Mazkira's core: everything the product does, without HTTP."""
