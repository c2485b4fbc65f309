"""The API's documentation: a complete OpenAPI document and a viewer that needs no CDN.

- every ``/api/v1`` operation declares the ``BearerAuth`` scheme (the tenant's admin key);
- operations whose body the handler reads itself declare it (the playbook upload takes YAML);
- ``/schema`` renders Swagger UI from assets served by the service (``/api-docs/assets/...``, the
  ``swagger-ui-bundle-v2`` package), so the docs work offline and leak no visit to a third party.
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar import Litestar, Response, get
from litestar.config.app import AppConfig
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPIMediaType, RequestBody, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from swagger_ui_bundle import swagger_ui_path

from app.core.features import Feature

__all__ = ["SCHEME", "ApiDocsFeature"]

SCHEME = "BearerAuth"
ASSETS = "/api-docs/assets"
_FILES: Mapping[str, str] = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
_PLAYBOOK_EXAMPLE = """id: spring-promo
name: Spring promotion
version: 1
language: en
triggers: [inbound_unknown_lead, lead_created]
steps:
  - id: hello
    type: message
    text: "Hi {{ lead.first_name }}! Thanks for your interest in our spring offer."
  - id: owner
    type: ask
    slot: homeowner
    kind: yes_no
    question: Do you own your home?
  - id: done
    type: end
    outcome: qualified
"""
#: Bodies the handlers read themselves: (path, method) -> media type, schema, example.
_BODIES: Mapping[tuple[str, str], tuple[str, Schema, str]] = {
    ("/api/v1/playbooks", "post"): (
        "application/yaml",
        Schema(type=OpenAPIType.STRING, description="a playbook, as YAML (see playbooks/schema)"),
        _PLAYBOOK_EXAMPLE,
    ),
}


@get(f"{ASSETS}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def api_docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One file of the Swagger UI bundle (only the three the viewer loads)."""
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFoundException()
    data = (swagger_ui_path / name).read_bytes()
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


def _document_bodies(app: Litestar) -> None:
    """Add the request bodies the handlers read themselves to the OpenAPI document."""
    from litestar._openapi.plugin import OpenAPIPlugin

    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for (path, method), (media_type, schema, example) in _BODIES.items():
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if operation is not None and operation.request_body is None:
            operation.request_body = RequestBody(
                content={media_type: OpenAPIMediaType(schema=schema, example=example)}, required=True
            )


class ApiDocsFeature(Feature, ReceiveRoutePlugin):
    """The OpenAPI document's security scheme and bodies, and the local Swagger UI."""

    route_handlers = (api_docs_asset,)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config = super().on_app_init(app_config)
        config = app_config.openapi_config or OpenAPIConfig(title="LeadWarm", version="0.1.0", path="/schema")
        scheme = SecurityScheme(
            type="http",
            scheme="bearer",
            description="The tenant's admin API key: `Authorization: Bearer lw_...`",
        )
        existing = config.components if isinstance(config.components, list) else [config.components]
        viewer = SwaggerRenderPlugin(
            js_url=f"{ASSETS}/swagger-ui-bundle.js",
            css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            favicon="",
            path="/",
        )
        # Set on the config in place: a copy would re-run its deprecated-field checks.
        config.components = [*existing, Components(security_schemes={SCHEME: scheme})]
        config.render_plugins = [viewer]
        config.default_plugin = viewer
        app_config.openapi_config = config
        app_config.on_startup.append(_document_bodies)
        return app_config

    def receive_route(self, route: BaseRoute) -> None:
        """Every ``/api/v1`` operation requires the admin key."""
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/v1"):
            for handler in route.route_handlers:
                handler.security = [{SCHEME: []}]

    def __repr__(self) -> str:
        return "ApiDocsFeature()"
