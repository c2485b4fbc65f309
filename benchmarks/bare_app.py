"""The baseline: a bare Litestar endpoint that reads the body and answers 200."""

from __future__ import annotations

from litestar import Litestar, Request, post


@post("/bare", status_code=200)
async def bare(request: Request) -> dict[str, bool]:
    """Read the body, answer like the webhook does."""
    await request.body()
    return {"ok": True}


app = Litestar(route_handlers=[bare])
