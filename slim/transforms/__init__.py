"""libcst transforms that turn a kept upstream module into its slimmed form (see rewrite.py)."""
