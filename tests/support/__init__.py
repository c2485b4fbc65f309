"""Helpers shared by tests: free loopback ports and Prism mock servers for vendor OpenAPI specs."""
