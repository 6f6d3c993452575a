"""Composition and HTTP: settings, the database, the FastAPI app, the CLI."""
