"""Inference measurements: generation through the inference core (torch or CTranslate2), and the server under load.

Each generation run is a fresh process (``measure.interleaved``); each serving configuration is a real
``scripts/serve.py`` process on loopback, loaded by concurrent HTTP clients. Random weights never emit EOS, so every
summary runs to ``max_new_tokens`` on every side: lengths are forced, as in the generation comparison.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def core_generation(
    model_dir: str,
    articles_file: str,
    batch_size: int,
    max_new_tokens: int,
    num_beams: int,
    backend: str = "torch",
    compute_type: str | None = None,
    precision: str = "32-true",
    warmup: bool = True,
) -> dict[str, Any]:
    """Summaries per second of ``Summarizer.summarize`` over the articles (one warm-up batch first)."""
    from resumen.core.inference import Summarizer
    from benchmarks.measure import peak_rss_gib, synchronize

    articles = [json.loads(line)["text"] for line in Path(articles_file).read_text(encoding="utf-8").splitlines()]
    summarizer = Summarizer.load(
        model_dir,
        device="cuda" if _cuda() else "cpu",
        precision=precision,
        batch_size=batch_size,
        backend=backend,
        compute_type=compute_type,
        announce=lambda _: None,
    )
    settings = {"max_new_tokens": max_new_tokens, "num_beams": num_beams}
    if warmup:
        summarizer.summarize(articles[:batch_size], **settings)
    synchronize()
    start = time.perf_counter()
    summaries = summarizer.summarize(articles, **settings)
    synchronize()
    seconds = time.perf_counter() - start
    return {
        "summaries_per_sec": len(summaries) / seconds,
        "seconds": seconds,
        "peak_rss_gib": peak_rss_gib(),
        "mean_output_tokens": statistics.fmean(s.output_tokens for s in summaries),
        "summaries": [s.summary for s in summaries],
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ------------------------------------------------------------------------------------------------- serving
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, max_batch_size: int, batch_timeout: float, extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [
        sys.executable,
        "scripts/serve.py",
        "--model",
        f"bench={model}",
        "--port",
        str(port),
        "--no-openai",
        "--max-batch-size",
        str(max_batch_size),
        "--batch-timeout",
        str(batch_timeout),
        "--timeout",
        "600",
        "--max-chars",
        "100000",
        *(extra or []),
    ]
    env = dict(os.environ)
    env.pop("RESUMEN_API_KEY", None)
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).text == "ok":
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError("the server did not become healthy within 300 s")


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)


def load_levels(url: str, articles: list[str], concurrencies: list[int], requests_per_level: int, body: dict[str, Any]) -> dict[str, Any]:
    """At each concurrency, ``requests_per_level`` requests from that many clients: requests/s and latency."""
    import httpx

    levels: dict[str, Any] = {}
    for concurrency in concurrencies:
        count = max(requests_per_level, concurrency)
        texts = [articles[i % len(articles)] for i in range(count)]

        def one(text: str) -> float:
            start = time.perf_counter()
            response = httpx.post(f"{url}/summarize", json={"text": text, **body}, timeout=600)
            response.raise_for_status()
            return time.perf_counter() - start

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, texts[:concurrency]))  # warm-up: one round at this concurrency
            start = time.perf_counter()
            latencies = sorted(pool.map(one, texts))
            wall = time.perf_counter() - start
        levels[str(concurrency)] = {
            "requests": count,
            "requests_per_sec": count / wall,
            "p50_seconds": latencies[len(latencies) // 2],
            "p95_seconds": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        }
    return levels


def serving(
    model_dir: str,
    articles_file: str,
    concurrencies: list[int],
    requests_per_level: int,
    max_batch_size: int,
    max_new_tokens: int,
    num_beams: int,
    backend: str = "torch",
    compute_type: str | None = None,
    batch_timeout: float = 0.05,
) -> dict[str, Any]:
    """One server configuration under load (a fresh server process)."""
    articles = [json.loads(line)["text"] for line in Path(articles_file).read_text(encoding="utf-8").splitlines()]
    extra = ["--backend", backend] + (["--compute-type", compute_type] if compute_type else [])
    server, url = start_server(model_dir, max_batch_size, batch_timeout, extra)
    try:
        levels = load_levels(url, articles, concurrencies, requests_per_level, {"max_new_tokens": max_new_tokens, "num_beams": num_beams})
    finally:
        stop_server(server)
    return {"max_batch_size": max_batch_size, "backend": backend, "compute_type": compute_type, "levels": levels}
