"""File foundations: atomic writes, a restricted unpickler, readers of name -> value tables."""
