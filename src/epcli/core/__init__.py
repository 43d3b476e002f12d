"""Core: errors, the schema of tables and model kinds, pair geometry, checks."""
