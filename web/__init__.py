"""The web layer: Flask factory, per-request session, blueprints and CLI commands."""
