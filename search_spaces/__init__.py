"""Declarative search-space files: the built-ins' default spaces and the presets."""
