"""Serve fine-tuned summarisers over HTTP with LitServe: a batched JSON API, an OpenAI route and a page to try them.

    python scripts/serve.py --model runs/demo/version_0/export                      # http://127.0.0.1:8000
    python scripts/serve.py --model base=google/flan-t5-small --model tuned=runs/.../export --port 8080
    RESUMEN_API_KEY=secret python scripts/serve.py --model tuned=runs/.../export --host 0.0.0.0

Routes: GET / (the page), GET /health, GET /models, POST /summarize ({"text": ...} or {"texts": [...]}, optional
"model" and generation overrides), POST /v1/chat/completions (OpenAI's shape; "stream": true streams the summary).
Each model is used as every other door uses it: its own prompt template, max_source_length and generation settings.
Concurrent requests are batched (--max-batch-size, --batch-timeout); a request's summary does not depend on what it
was batched with. docs/serving.md has the details, the security notes and how to scale out.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


from resumen.app.cli_support import main_guard
from resumen.app.common import add_backend_options


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="[NAME=]PATH[@ENGINE[:TYPE]]",
        help="a model to serve (export, checkpoint, LoRA adapter directory or hub id); repeat for several, "
        "each NAME=PATH (the first is the default); PATH@ctranslate2:int8 serves that model with "
        "CTranslate2 whatever --backend says",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--max-batch-size", type=int, default=8, help="requests batched together at most (default 8)")
    parser.add_argument("--batch-timeout", type=float, default=0.05, help="seconds to wait for a batch to fill (default 0.05)")
    parser.add_argument("--max-chars", type=int, default=20_000, help="longest article accepted, in characters (413 beyond)")
    parser.add_argument("--max-texts", type=int, default=16, help='most articles in one request\'s "texts"')
    parser.add_argument("--max-new-tokens-limit", type=int, default=512, help="largest max_new_tokens a request may ask for")
    parser.add_argument("--max-beams", type=int, default=8, help="largest num_beams a request may ask for")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a request may wait and run (504 beyond)")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="device type")
    parser.add_argument("--devices", default="auto", help="how many devices (default: all of the type)")
    parser.add_argument("--workers-per-device", type=int, default=1, help="model workers per device (each holds the models)")
    parser.add_argument(
        "--precision",
        default="32-true",
        help="32-true (default: a summary never depends on what it was batched with) or bf16-mixed "
        "(faster where bf16 is native; batched summaries may then differ slightly), or auto",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="articles per generate() call inside a batch")
    add_backend_options(parser)
    parser.add_argument(
        "--no-openai", action="store_true", help="do not serve /v1/chat/completions (it runs in its own worker with its own copy of the models)"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="on loopback, another Host name to answer besides 127.0.0.1 and localhost (a reverse proxy that passes its own Host header); repeat for several",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="let model repositories run their own code")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser.parse_args(argv)


def named_models(specs: list[str]) -> dict[str, str]:
    """``NAME=PATH[@ENGINE[:TYPE]]`` (or a bare path, named after it) -> {name: spec}, in the order given."""
    from resumen.core.errors import ResumenError

    models: dict[str, str] = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        name = name or Path(path.split("@")[0].rstrip("/")).name or path
        if not path:
            raise ResumenError(f"--model {spec!r} names no path: use NAME=PATH or PATH.")
        if name in models:
            raise ResumenError(f"two models are named '{name}': give each --model a NAME=PATH of its own.")
        models[name] = path
    return models


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from resumen.core.errors import ResumenError
    from resumen.app.serving.app import build_server
    from resumen.app.serving.requests import Limits

    for name in ("max_batch_size", "max_chars", "max_texts", "max_new_tokens_limit", "max_beams", "workers_per_device", "batch_size"):
        if getattr(args, name) < 1:
            raise ResumenError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)}).")
    if args.timeout <= args.batch_timeout:
        raise ResumenError(f"--timeout ({args.timeout}) must be longer than --batch-timeout ({args.batch_timeout}).")
    models = named_models(args.model)
    limits = Limits(tuple(models), args.max_chars, args.max_texts, args.max_new_tokens_limit, args.max_beams)
    options = {
        "max_batch_size": args.max_batch_size,
        "batch_timeout": args.batch_timeout,
        "timeout": args.timeout,
        "accelerator": args.accelerator,
        "devices": int(args.devices) if str(args.devices).isdigit() else args.devices,
        "workers_per_device": args.workers_per_device,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "trust_remote_code": args.trust_remote_code,
        "backend": args.backend,
        "compute_type": args.compute_type,
    }
    if args.host not in LITSERVE_HOSTS:
        raise ResumenError(
            f"--host {args.host}: the server listens on 127.0.0.1 (this machine), 0.0.0.0 or :: (every "
            "address); to reach one address only, put a reverse proxy in front of 127.0.0.1."
        )
    api_key = os.environ.get("RESUMEN_API_KEY") or None
    if api_key is not None and not (api_key.isascii() and api_key.isprintable() and " " not in api_key):
        raise ResumenError(
            "RESUMEN_API_KEY must be printable ASCII without spaces: browsers and HTTP clients cannot send "
            "other characters in a header (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')."
        )
    loopback = args.host in ("127.0.0.1", "localhost")
    if not loopback and not api_key:
        print(f"warning: serving on {args.host} without RESUMEN_API_KEY: anyone who can reach it can use it.", file=sys.stderr)
    check_port_free(LITSERVE_HOSTS[args.host], args.port)
    check_models_serve(models, options)
    allowed = frozenset(name.lower() for name in args.allowed_host)
    server = build_server(models, options, limits, api_key, openai_route=not args.no_openai, loopback_only=loopback, allowed_hosts=allowed)
    print(f"Serving {', '.join(models)} on http://{args.host}:{args.port} (the page is at /)", file=sys.stderr)
    stop_on_sigterm()
    from resumen.app.serving.apis import die_with_parent

    os.register_at_fork(after_in_child=die_with_parent)  # LitServe's HTTP workers and manager end with this process
    server.run(host=LITSERVE_HOSTS[args.host], port=args.port, generate_client_file=False)


def check_port_free(host: str, port: int) -> None:
    """A port another process listens on is one line before any model loads (uvicorn's own text came after them)."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT does not count
        try:
            sock.bind((host, port))
        except OSError as error:
            from resumen.core.errors import ResumenError

            reason = "is in use (another server?)" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
            raise ResumenError(f"port {port} on {host} {reason}: stop what holds it, or pass --port N.") from None


# What the check below asks of each model: one short article, summarised with one new token.
CHECK_ARTICLE = "El Ayuntamiento aprobó ayer el presupuesto."


def check_models_serve(models: dict[str, str], options: dict) -> None:
    """Load each model once here and summarise a short article, before any worker starts: a damaged model (weights
    or tokenizer cut short, a broken conversion, a tokenizer that fails on the prompt) is one line naming it, and the
    server never reports ready with a model that cannot serve a request. A CTranslate2 conversion is made here, once,
    not by every worker at the same time."""
    import gc

    from resumen.core.errors import ResumenError, first_line
    from resumen.core.inference import resolve_device
    from resumen.app.common import load_summarizer, model_spec

    on_cpu = resolve_device({"gpu": "cuda"}.get(options["accelerator"], options["accelerator"])) == "cpu"
    for name, spec in models.items():
        path, backend, compute_type = model_spec(spec, options.get("backend", "torch"), options.get("compute_type"))
        # checked on the CPU (a GPU's compute type is checked by its worker)
        summarizer = load_summarizer(
            path, "cpu", "32-true", options.get("trust_remote_code", False), 1, name=name, backend=backend, compute_type=compute_type if on_cpu else None
        )
        try:
            summarizer.summarize([CHECK_ARTICLE], max_new_tokens=1, num_beams=1)
        except ResumenError as error:
            raise ResumenError(f"model '{name}' ({path}) cannot be served: {error}") from None
        except Exception as error:  # whatever the tokenizer or the model raise on a plain article
            raise ResumenError(
                f"model '{name}' ({path}) cannot summarise a short article ({type(error).__name__}: {first_line(error)}): check its files, or export it again."
            ) from None
        del summarizer
        gc.collect()


# the addresses LitServe can bind (it refuses others), by the names a user may give them
LITSERVE_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "0.0.0.0": "0.0.0.0", "::": "::"}


def stop_on_sigterm() -> None:
    """SIGTERM (docker stop, systemd, Kubernetes) stops the server as Ctrl-C does: LitServe then stops its workers
    and its manager process. Without this, SIGTERM ended the main process alone and left them running, holding the
    port and the models' memory."""
    import signal

    main_pid = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:  # a forked worker inherited this handler: end as SIGTERM's default would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def cli() -> None:
    """Console entry point (resumen-serve): one-line errors, exit code 2."""
    main_guard(main)


if __name__ == "__main__":
    main_guard(main)
