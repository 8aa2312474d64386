"""A tiny stand-in for upstream sglang: registries, platform branches, server processes."""
