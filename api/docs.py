"""The API's documentation pages, served without the internet.

Litestar's render plugins load Swagger UI from a CDN by default, so ``/schema``
is blank on a machine without access. ``docs_plugins()`` points Swagger UI at
the copy the ``swagger-ui-py`` package ships (served under
``/schema/assets/``, favicon included) and serves the OpenAPI document as JSON.
No page here names an outside URL.

The document is Litestar's, with one change: an input's ``action`` is typed
``Any`` so that a malformed action still reaches the engine (which records it
as rejected, as the original did), which would leave it ``{}`` in the docs.
``document_actions`` describes it instead as the tagged union of the real
action shapes (``events.actions.Action``), discriminated by ``action``.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Router
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from ..events.actions import Action

DOCS_PATH = "/schema"
ASSETS_PATH = f"{DOCS_PATH}/assets"
ASSETS_PACKAGE = "swagger_ui"  # PyPI: swagger-ui-py, Swagger UI 5 (OpenAPI 3.1, as Litestar writes)
ACTION_NOTE = ("One of the action shapes below, chosen by its `action` field. Anything else is still accepted "
               "and recorded: the engine rejects it as `malformed` and the turn's `errors` lists it.")


def get_assets_dir() -> Path:
    """Return the folder of Swagger UI's files in the installed asset package (found without importing it)."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {ASSETS_PACKAGE} package (pip install swagger-ui-py) is needed for the API docs")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def document_actions(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the OpenAPI ``schema`` whose AgentInput.action is the tagged union of the action shapes."""
    (union,), components = msgspec.json.schema_components([Action], ref_template="#/components/schemas/{name}")
    documented = copy.deepcopy(schema)
    schemas = documented.setdefault("components", {}).setdefault("schemas", {})
    agent_input = schemas.get("AgentInput")
    if agent_input is None:
        return documented
    schemas.update({name: value for name, value in components.items() if name not in schemas})
    agent_input["properties"]["action"] = {"oneOf": union["anyOf"], "discriminator": union["discriminator"],
                                           "description": ACTION_NOTE}
    return documented


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI from the installed asset package, over the documented schema."""

    def __init__(self, path: str | list[str]) -> None:
        super().__init__(
            js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js", css_url=f"{ASSETS_PATH}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>", path=path)

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, document_actions(openapi_schema))

    def receive_router(self, router: Router) -> None:
        """Serve the asset package's files beside the docs page."""
        super().receive_router(router)
        router.register(create_static_files_router(path=ASSETS_PATH.removeprefix(DOCS_PATH), name="docs-assets",
                                                   directories=[get_assets_dir()], include_in_schema=False))


class DocumentedJson(JsonRenderPlugin):
    """The OpenAPI document as JSON, with the action union."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, document_actions(openapi_schema))


def docs_plugins() -> list:
    """Return the render plugins of ``/schema``: Swagger UI at ``/schema`` and ``/schema/swagger``, the JSON."""
    return [OfflineSwagger(path=["/", "/swagger"]), DocumentedJson()]


__all__ = ["docs_plugins", "document_actions", "get_assets_dir", "DOCS_PATH", "ASSETS_PATH"]
