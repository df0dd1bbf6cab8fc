"""The server, assembled: LitServe with the two APIs, the key check, one-line JSON errors, ``/models`` and the page.

A served model is a public surface: it binds to loopback unless told otherwise, every route but ``/health`` and the
page itself needs ``Authorization: Bearer <key>`` when ``RESUMEN_API_KEY`` is set (compared in constant time), every
bad request is a 4xx with a one-line message, and request sizes and generation settings are bounded. A server on
loopback answers only requests addressed to loopback (``Host``), so a web page cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse

from resumen.app.serving.requests import Limits

PAGE = Path(__file__).with_name("page.html")
OPEN_PATHS = ("/health", "/", "/favicon.ico")  # the page loads without the key, then asks for it
HEAD_PATHS = ("/health", "/", "/models", "/v1/models")  # answered like GET without the body (load balancers, curl -I)
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


async def send_json(send: Any, status: int, message: str, headers: list | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def host_name(header: bytes) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:8000`` -> ``[::1]``)."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text.split("]", 1)[0] + "]"
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class Gate:
    """ASGI middleware in front of every route: ``HEAD`` as ``GET`` on ``HEAD_PATHS``; on a loopback server, a
    ``Host`` that is not loopback is refused (400: DNS rebinding would otherwise let any web page read a keyless
    local server); with a key, ``Authorization: Bearer <key>`` on every path but ``OPEN_PATHS`` (401 otherwise;
    the scheme's case does not matter, RFC 7235)."""

    def __init__(self, app: Any, key: str | None = None, loopback_only: bool = False, allowed_hosts: frozenset = frozenset()) -> None:
        self.app = app
        self.expected = key.encode() if key else None
        self.loopback_only = loopback_only
        self.hosts = LOOPBACK_NAMES | allowed_hosts  # --allowed-host: a reverse proxy's own name

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.loopback_only and host_name(headers.get(b"host", b"127.0.0.1")) not in self.hosts:
            await send_json(
                send,
                400,
                "this server answers requests to 127.0.0.1 or localhost only (--host 127.0.0.1): name a reverse proxy's "
                "own Host with --allowed-host NAME, or serve on 0.0.0.0 with RESUMEN_API_KEY to be reached by another name",
            )
            return
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if not (hmac.compare_digest(given.strip(), self.expected) and scheme.lower() == b"bearer"):
                await send_json(send, 401, "missing or wrong API key: send Authorization: Bearer <RESUMEN_API_KEY>", [(b"www-authenticate", b"Bearer")])
                return
        if scope["method"] == "HEAD" and scope["path"] in HEAD_PATHS:
            scope = {**scope, "method": "GET"}

            async def send_no_body(message: dict) -> None:
                await send({**message, "body": b"", "more_body": False} if message["type"] == "http.response.body" else message)

            await self.app(scope, receive, send_no_body)
            return
        await self.app(scope, receive, send)


def error_body(path: str, status: int, message: str) -> dict[str, Any]:
    """One line for our routes; OpenAI's error shape on /v1 (its clients read error.message)."""
    if path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "code": status}}
    return {"error": message}


def install_error_handlers(app: Any) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from resumen.app.serving.requests import validation_message

    async def invalid(request: Any, error: RequestValidationError) -> JSONResponse:
        status, message = validation_message(list(error.errors()))
        content_type = request.headers.get("content-type", "")
        if status == 400 and content_type and "json" not in content_type:  # curl -d sends a form
            message = f"the body must be JSON, sent with Content-Type: application/json (not {content_type.split(';')[0]})"
        return JSONResponse(error_body(request.url.path, status, message), status_code=status)

    async def http_error(request: Any, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        if error.status_code == 504 and message == "Request timed out":
            message = "the request waited longer than this server's --timeout for a worker: try again, or add workers"
        if error.status_code == 413 and message == "Payload too large":
            message = "the body is larger than this server accepts (--max-chars, --max-texts)"
        return JSONResponse(error_body(request.url.path, error.status_code, message), status_code=error.status_code)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


def shown_path(path: str | None) -> str | None:
    """A model's location as ``/models`` shows it: a hub id or a relative path as given, an absolute one by its last
    name only (the server's file layout is nobody's business)."""
    if path is None:
        return None
    local = Path(path).expanduser()
    return local.name if local.is_absolute() else path


def describe_model(name: str, spec: str, backend: str = "torch", compute_type: str | None = None) -> dict[str, Any]:
    """What ``GET /models`` shows, read from the model's files (no weights are loaded in the HTTP process)."""
    from resumen.app.common import model_spec

    path, backend, compute_type = model_spec(spec, backend, compute_type)
    from resumen.core.generation import GenerationSettings
    from resumen.core.inference import DEFAULT_MAX_SOURCE_LENGTH
    from resumen.core.loading import load_config
    from resumen.core.trained_with import TrainedWith, from_checkpoint, from_model_config

    location = Path(path).expanduser()
    if location.suffix == ".ckpt":
        from resumen.core.checkpoint_file import read_checkpoint_metadata

        checkpoint = read_checkpoint_metadata(location)
        record = from_checkpoint(checkpoint, path) or TrainedWith()
        hp = checkpoint.get("hyper_parameters") or {}
        saved = hp.get("generation") if isinstance(hp.get("generation"), dict) else {}  # the module's decoding settings
        generation = GenerationSettings(**{k: v for k, v in saved.items() if k in GenerationSettings.__dataclass_fields__})
        base = hp.get("model_name_or_path")
    else:
        from transformers import GenerationConfig

        record = from_model_config(load_config(path), path) or TrainedWith(base_model=path)
        try:
            generation = GenerationSettings.from_generation_config(GenerationConfig.from_pretrained(path))
        except (OSError, ValueError):
            generation = GenerationSettings.from_generation_config(None)
        base = record.base_model or path
    return {
        "name": name,
        "path": shown_path(path),
        "base_model": shown_path(base),
        "prompt_template": record.prompt_template,
        "max_source_length": record.max_source_length or DEFAULT_MAX_SOURCE_LENGTH,
        "generation": generation.describe(),
        "backend": backend,
        "compute_type": compute_type if backend == "ctranslate2" else None,
    }


def build_server(
    models: dict[str, str],
    options: dict[str, Any],
    limits: Limits,
    api_key: str | None,
    openai_route: bool = True,
    loopback_only: bool = False,
    allowed_hosts: frozenset = frozenset(),
):
    """The LitServer: ``POST /summarize`` (batched), ``POST /v1/chat/completions``, ``GET /models`` and
    ``GET /v1/models``, the page at ``/``. ``loopback_only``: refuse requests whose ``Host`` is not loopback (or one
    of ``allowed_hosts``)."""
    import litserve as ls
    from fastapi.routing import APIRoute

    from resumen.app.serving.apis import ChatAPI, SummarizeAPI
    from resumen.lightning_modules.compat import put_routes_first

    descriptions = [
        describe_model(name, spec, options.get("backend", "torch"), options.get("compute_type")) for name, spec in models.items()
    ]  # also checks every path early
    apis: list[Any] = [SummarizeAPI(models, options, limits, max_batch_size=options["max_batch_size"], batch_timeout=options["batch_timeout"])]
    if openai_route:
        apis.append(ChatAPI(models, options, limits))
    server = ls.LitServer(
        apis,
        accelerator=options["accelerator"],
        devices=options["devices"],
        workers_per_device=options["workers_per_device"],
        timeout=options["timeout"],
        max_payload_size=limits.payload_bytes(),
        middlewares=[(Gate, {"key": api_key, "loopback_only": loopback_only, "allowed_hosts": allowed_hosts})],
    )
    install_error_handlers(server.app)

    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def list_models() -> JSONResponse:
        return JSONResponse({"models": descriptions, "limits": limits.as_dict(), "openai_route": openai_route})

    async def list_openai_models() -> JSONResponse:  # what OpenAI clients call (client.models.list())
        return JSONResponse({"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "resumen"} for name in models]})

    routes = [APIRoute("/", page, methods=["GET"], include_in_schema=False), APIRoute("/models", list_models, methods=["GET"])]
    if openai_route:
        routes.append(APIRoute("/v1/models", list_openai_models, methods=["GET"]))
    put_routes_first(server.app, routes)  # the page replaces LitServe's "litserve running" at "/"
    return server
