"""One module per CLI command, each exposing ``register(app)``; see ``trainguard/cli.py``."""
