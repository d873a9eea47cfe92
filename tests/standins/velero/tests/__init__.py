"""The tests of this stand-in (not of the product)."""
