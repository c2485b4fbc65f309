"""HTTP and WebSocket endpoints, grouped as Litestar plugins (see :mod:`app.main`)."""
