"""The commands, one module per resource; each module's `register(app)` adds its commands."""
