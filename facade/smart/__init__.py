"""The built-in SMART authorization server."""
