"""Built-in stages that need no model (one module per stage)."""
