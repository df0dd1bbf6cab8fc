"""The server as a user meets it: a real process on loopback with two models and an API key, real HTTP, the OpenAI
client, 32 concurrent requests, crafted bodies, and the page in a real headless Chromium."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT

httpx = pytest.importorskip("httpx")
KEY = "test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models: list[str], *extra: str, key: str | None = KEY) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RESUMEN_API_KEY", None)
    if key:
        env["RESUMEN_API_KEY"] = key
    command = [
        sys.executable,
        "scripts/serve.py",
        *[arg for model in models for arg in ("--model", model)],
        "--port",
        str(port),
        "--max-chars",
        "5000",
        "--max-texts",
        "4",
        *extra,
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}: {server.stdout.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).text == "ok":
                return server, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise AssertionError("the server did not become healthy within 180 s")


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def export(finished_run) -> Path:
    return finished_run["runs"] / "demo" / "version_0" / "export"


@pytest.fixture(scope="module")
def served(export, tiny_t5):
    """The module's server process and its URL; the SIGTERM test, last in this file, stops it."""
    process, url = start_server([f"tuned={export}", f"base={tiny_t5}", f"fast={export}@ctranslate2:float32"])
    yield process, url
    stop_server(process)


@pytest.fixture(scope="module")
def server(served) -> str:
    return served[1]


def summarize(url: str, **body) -> httpx.Response:
    return httpx.post(f"{url}/summarize", json=body, headers=AUTH, timeout=120)


def test_everything_but_health_and_the_page_needs_the_key(server):
    assert httpx.get(f"{server}/health").text == "ok"
    assert "<textarea" in httpx.get(f"{server}/").text  # the page loads, then asks for the key
    for method, path in [("GET", "/models"), ("POST", "/summarize"), ("POST", "/v1/chat/completions"), ("GET", "/info")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            response = httpx.request(method, f"{server}{path}", headers=headers, json={"text": "hola"})
            assert response.status_code == 401, (path, headers, response.text)
            assert "API key" in response.json()["error"]


def test_models_says_what_each_model_was_trained_with(server, tiny_t5):
    models = {m["name"]: m for m in httpx.get(f"{server}/models", headers=AUTH).json()["models"]}
    assert list(models) == ["tuned", "base", "fast"]
    assert models["fast"]["backend"] == "ctranslate2" and models["fast"]["compute_type"] == "float32"
    assert models["tuned"]["max_source_length"] == 256 and models["tuned"]["generation"]["num_beams"] == 2
    assert models["tuned"]["prompt_template"] == "Resume el siguiente articulo:\n\n{text}"
    assert models["base"]["base_model"] == Path(tiny_t5).name  # a local directory by its name: no server paths shown


def test_the_server_summarize_py_and_train_predict_give_the_same_summaries(server, export, finished_run):
    from resumen.app import summarize as summarize_script

    run = finished_run["runs"] / "demo" / "version_0"
    predicted = [json.loads(line) for line in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    articles = [json.loads(line)["text"] for line in (ROOT / "datamodules/data/test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(predicted) == len(articles) == 5
    served = [summarize(server, text=article).json()["summary"] for article in articles]
    from_script = [row["summary"] for row in summarize_script.main(["--model", str(export), *articles])]
    assert served == from_script == [row["summary"] for row in predicted]
    batch = summarize(server, texts=articles[:4]).json()
    assert [row["summary"] for row in batch["summaries"]] == served[:4] and batch["model"] == "tuned"


def test_a_ctranslate2_model_is_served_beside_torch_with_the_same_greedy_summaries(server):
    articles = [json.loads(line)["text"] for line in (ROOT / "datamodules/data/test.jsonl").read_text(encoding="utf-8").splitlines()]
    for article in articles:
        torch_summary = summarize(server, text=article, model="tuned", num_beams=1).json()["summary"]
        assert summarize(server, text=article, model="fast", num_beams=1).json()["summary"] == torch_summary


def test_a_response_says_what_happened(server):
    long_article = "El Betis ganó al Celta en el último minuto del partido. " * 60
    body = summarize(server, text=long_article, model="base", max_new_tokens=3, num_beams=1).json()
    assert set(body) == {"summary", "model", "input_tokens", "output_tokens", "truncated", "seconds"}
    assert body["model"] == "base" and body["truncated"] is True and body["input_tokens"] == 512 and body["output_tokens"] <= 3


@pytest.mark.parametrize(
    "body, status, says",
    [
        ("not json", 400, "must be a JSON object"),
        ([1, 2], 400, "must be a JSON object"),
        ({}, 400, 'either "text"'),
        ({"text": 5}, 400, "text: Input should be a valid string"),
        ({"text": "   "}, 400, "text is empty"),
        ({"texts": []}, 400, "texts is empty"),
        ({"texts": ["a"] * 5}, 413, "at most 4 per request"),
        ({"text": "a" * 5001}, 413, "at most 5,000 (--max-chars)"),
        ({"text": "hola", "model": "gpt-4"}, 404, "unknown model 'gpt-4'"),
        ({"text": "hola", "max_new_tokens": 10**9}, 400, "max_new_tokens must be between 1 and 512"),
        ({"text": "hola", "num_beams": 1000}, 400, "num_beams must be between 1 and 8"),
        ({"text": "hola", "num_beams": "3"}, 400, "num_beams: Input should be a valid integer"),
        ({"text": "hola", "length_penalty": 1e308 * 10}, 400, "length_penalty"),
        ({"text": "hola", "temperature": 0.5}, 400, "unknown field 'temperature'"),
    ],
)
def test_a_bad_request_is_a_4xx_with_one_line_and_the_server_keeps_serving(server, body, status, says):
    data = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(f"{server}/summarize", content=data, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error and says in error
    assert summarize(server, text="El Betis ganó.").status_code == 200


def test_a_form_body_and_a_huge_body_are_refused_with_the_reason(server):
    form = httpx.post(f"{server}/summarize", content="text=hola", headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 400 and "Content-Type: application/json" in form.json()["error"]
    huge = httpx.post(f"{server}/summarize", content=b'{"text": "' + b"a" * 3_000_000 + b'"}', headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert huge.status_code == 413 and "larger than this server accepts" in huge.json()["error"]
    assert httpx.get(f"{server}/health").text == "ok"


def test_the_openai_client_gets_the_summary_and_can_stream_it(server):
    openai = pytest.importorskip("openai")
    article = "El Ayuntamiento de Valencia ha anunciado que las doce bibliotecas municipales abrirán hasta la medianoche."
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY)
    reply = client.chat.completions.create(model="tuned", messages=[{"role": "user", "content": article}])
    expected = summarize(server, text=article).json()["summary"]
    assert reply.choices[0].message.content == expected
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    chunks = [
        c.choices[0].delta.content
        for c in client.chat.completions.create(model="tuned", messages=[{"role": "user", "content": article}], stream=True)
        if c.choices and c.choices[0].delta.content
    ]
    # in pieces: word by word at least (a one-word summary, which a tiny model can write, is one piece)
    assert "".join(chunks) == expected and len(chunks) >= min(2, len(expected.split(" ")))
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": article}])


def test_32_concurrent_requests_each_get_their_own_summary(server, export):
    """Dynamic batching: whatever a request is batched with, its summary is the one it gets alone (fp32)."""
    from resumen.core.inference import Summarizer

    sentences = [
        json.loads(line)["text"]
        for split in ("train", "validation", "test")
        for line in (ROOT / f"datamodules/data/{split}.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    articles = [f"{sentences[i % len(sentences)]} Noticia número {i}." for i in range(32)]
    alone = Summarizer.load(str(export), device="cpu", precision="32-true")
    expected = [alone.summarize([article])[0].summary for article in articles]
    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda article: summarize(server, text=article), articles))
    assert [r.status_code for r in responses] == [200] * 32
    assert [r.json()["summary"] for r in responses] == expected
    assert httpx.get(f"{server}/health").text == "ok"


def test_the_page_in_a_real_browser_shows_every_models_summary(server):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_selector("#keybox", state="visible")  # /models answered 401: the page asks for the key
            page.fill("#key", KEY)
            page.click("#sample")
            article = page.input_value("#article")
            assert article.startswith("El Ayuntamiento de Valencia")
            page.click("#summarize")
            page.wait_for_function(
                """() => [...document.querySelectorAll('.model-column .meta')].length === 3 &&
                [...document.querySelectorAll('.model-column .meta')].every(m => m.textContent.includes(' s ·'))""",
                timeout=60_000,
            )
            shown = {name: page.inner_text(f'.model-column[data-model="{name}"] .summary') for name in ("tuned", "base", "fast")}
            meta = page.inner_text('.model-column[data-model="tuned"] .meta')
        finally:
            browser.close()
    served = {name: summarize(server, text=article, model=name).json()["summary"].strip() for name in shown}
    for name in ("tuned", "base", "fast"):
        assert shown[name] == (served[name] or "(empty: the model wrote no words)")
    assert not served["base"], "the random-weight base writes nothing here: the page's empty-summary note is shown"
    assert "tokens in" in meta and " out" in meta


def chat(url: str, timeout: float = 60, **body) -> httpx.Response:
    body.setdefault("messages", [{"role": "user", "content": "El Betis ganó al Celta."}])
    return httpx.post(
        f"{url}/v1/chat/completions",
        content=json.dumps(body),
        timeout=timeout,  # \ud800 as an escape
        headers={**AUTH, "Content-Type": "application/json"},
    )


def test_n_other_than_1_on_the_chat_route_is_a_400_and_the_server_keeps_serving(server):
    """Two 90-byte requests ({"stream": true, "n": 0}) used to leave both API processes spinning forever; n = 100000
    queued 100,000 generations."""
    for n in (0, 0, -1, 2, 100_000):
        for stream in (True, False):
            started = time.monotonic()
            response = chat(server, timeout=10, n=n, stream=stream)
            assert response.status_code == 400 and response.headers["content-type"].startswith("application/json")
            assert "n must be 1" in response.json()["error"]["message"] and time.monotonic() - started < 5
    assert httpx.get(f"{server}/health", timeout=5).text == "ok"
    assert summarize(server, text="El Betis ganó.").status_code == 200
    assert chat(server, n=1).json()["choices"][0]["message"]["content"] is not None


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"model": "gpt-4"}, 404, "unknown model 'gpt-4'"),
        ({"messages": [{"role": "user", "content": "  "}]}, 400, "the user message is empty"),
        ({"max_tokens": 0}, 400, "between 1 and 512"),
        ({"messages": [{"role": "system", "content": "Resume."}]}, 400, 'role "user"'),
        ({"messages": [{"role": "user", "content": "hola \ud800"}]}, 400, "lone surrogate"),
    ],
)
def test_a_bad_streaming_chat_request_is_a_4xx_before_any_stream(server, body, status, says):
    for stream in (True, False):
        response = chat(server, stream=stream, **body)
        assert response.status_code == status and response.headers["content-type"].startswith("application/json")
        assert says in response.json()["error"]["message"]


def test_a_lone_surrogate_is_a_400_and_never_fails_the_requests_batched_with_it(server):
    """A lone surrogate is a valid JSON escape: it used to reach the tokenizer and fail its whole batch with 500."""
    good = [f"El Betis ganó al Celta por {i} goles en el último minuto." for i in range(6)]
    raw = '{"text": "El alcalde \\ud800 anunció un plan."}'

    def send(i: int) -> httpx.Response:
        if i == 3:
            return httpx.post(f"{server}/summarize", content=raw, headers={**AUTH, "Content-Type": "application/json"}, timeout=120)
        if i == 5:
            return httpx.post(
                f"{server}/v1/chat/completions",
                content='{"messages": [{"role": "user", "content": "\\udfff"}]}',
                headers={**AUTH, "Content-Type": "application/json"},
                timeout=120,
            )
        return summarize(server, text=good[i])

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(send, range(6)))
    assert [r.status_code for r in responses] == [200, 200, 200, 400, 200, 400]
    assert "lone surrogate (\\ud800 at character 11)" in responses[3].json()["error"]


def test_openapi_and_the_openai_model_list_answer(server):
    spec = httpx.get(f"{server}/openapi.json", headers=AUTH)
    assert spec.status_code == 200 and {"/summarize", "/models", "/v1/chat/completions"} <= set(spec.json()["paths"])
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY)
    assert [model.id for model in client.models.list()] == ["tuned", "base", "fast"]


def test_the_gate_head_requests_host_names_and_the_auth_scheme(server):
    head = httpx.head(f"{server}/health")
    assert head.status_code == 200 and head.content == b""
    assert httpx.head(f"{server}/models", headers=AUTH).status_code == 200
    lower = httpx.get(f"{server}/models", headers={"Authorization": f"bearer {KEY}"})
    assert lower.status_code == 200  # RFC 7235: the scheme's case does not matter
    # DNS rebinding: a page on another name that resolves to 127.0.0.1 must not read a loopback server
    rebound = httpx.get(f"{server}/health", headers={"Host": "evil.example:80"})
    assert rebound.status_code == 400 and "127.0.0.1 or localhost only" in rebound.json()["error"]
    port = server.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert httpx.get(f"{server}/health", headers={"Host": host}).text == "ok"


def test_models_shows_no_local_paths(server):
    body = httpx.get(f"{server}/models", headers=AUTH).text
    assert "/tmp/" not in body and "pytest-of" not in body


def test_the_chat_stream_adds_up_to_the_summary_without_trailing_spaces():
    from resumen.core.inference import stripped_pieces

    assert list(stripped_pieces([" El", " Betis ", " ", "ganó", "  ", "\n"])) == ["El", " Betis", "  ganó"]
    assert "".join(stripped_pieces(["  ", " a b ", " "])) == "a b"


def test_a_request_that_runs_too_long_is_a_504_and_its_batch_neighbours_get_their_summaries(export):
    """Each request's time limit is its own (the worker's code, with one group of a batch made slow): the slow
    request is a 504 naming the limit, the request batched with it gets its summary."""
    from resumen.app.serving.apis import SummarizeAPI
    from resumen.app.serving.requests import Limits

    api = SummarizeAPI({"tuned": str(export)}, {"timeout": 2.0, "precision": "32-true"}, Limits(models=("tuned",)), max_batch_size=4)
    api.setup("cpu")
    summarizer = api.summarizers["tuned"]
    real = summarizer.summarize

    def slow_with_two_beams(texts, **overrides):
        if overrides.get("num_beams") == 2:
            time.sleep(2.1)
        return real(texts, **overrides)

    summarizer.summarize = slow_with_two_beams
    jobs = [
        {"texts": ["El Betis ganó."], "single": True, "model": "tuned", "overrides": {"num_beams": 2}},
        {"texts": ["El Celta perdió."], "single": True, "model": "tuned", "overrides": {"num_beams": 1}},
    ]
    slow, fast = [api.encode_response(output) for output in api.unbatch(api.predict(jobs))]
    assert slow.status_code == 504 and "longer than this server's 2 s (--timeout)" in json.loads(slow.body)["error"]
    assert fast["summary"] == real(["El Celta perdió."], num_beams=1)[0].summary and fast["seconds"] < 2


def test_sigterm_to_the_server_alone_stops_every_process_it_started(served):
    """docker stop / systemd / Kubernetes signal the main process only: its workers and LitServe's manager process
    must end with it, freeing the port and the models' memory. Last of the tests that use the module's server (its
    start is 15-30 s on a slow CPU): it stops it."""
    process, url = served
    try:
        group = process.pid  # start_new_session: the server's own process group
        assert len(_group_members(group)) >= 3  # the server, LitServe's manager, the inference and HTTP workers
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _group_members(group) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_members(group), "processes left running after SIGTERM"
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as sock:  # the port is free again: a new server can listen on it (the earlier tests'
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections wait out TIME_WAIT, as uvicorn's
            sock.bind(("127.0.0.1", port))  # own socket allows; a process still listening would make bind fail
            sock.listen()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _group_members(group: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group and (entry / "stat").read_text().split()[2] != "Z":
                    members.append(int(entry.name))
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
    return members


def test_a_host_litserve_cannot_bind_is_refused_before_any_model_loads(export):
    result = subprocess.run(
        [sys.executable, "scripts/serve.py", "--model", str(export), "--host", "10.1.2.3"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and result.stderr.startswith("error: --host 10.1.2.3") and "0.0.0.0" in result.stderr


def test_kill_9_of_the_server_ends_its_workers_and_a_busy_port_is_one_line(export):
    """A kill -9 of the main process (the OOM killer, a node agent) used to leave its workers holding the port and
    answering /health with the old models; a restart then exited 3 with uvicorn's text."""
    process, url = start_server([str(export)], "--no-openai", key=None)
    port = url.rsplit(":", 1)[1]
    try:
        assert len(_group_members(process.pid)) >= 3
        busy = subprocess.run(
            [sys.executable, "scripts/serve.py", "--model", str(export), "--port", port], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        errors = [line for line in busy.stderr.splitlines() if line.strip()]
        assert busy.returncode == 2 and errors == [f"error: port {port} on 127.0.0.1 is in use (another server?): stop what holds it, or pass --port N."], (
            busy.stderr[-2000:]
        )
        process.kill()  # SIGKILL to the main process alone
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _group_members(process.pid), "workers outlived a kill -9 of the server"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def serve_refused(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """serve.py as a user starts it, for a start that is expected to be refused (it returns instead of serving)."""
    command = [sys.executable, "scripts/serve.py", *args, "--port", str(free_port())]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize(
    "damaged, says",
    [
        ("model.safetensors", "the weights file '.*model.safetensors' cannot be read"),
        ("tokenizer.json", "the tokenizer files of '.*' .* cannot be read"),
    ],
)
def test_a_damaged_model_is_one_line_before_any_worker_starts(export, tmp_path, damaged, says):
    import re

    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    data = (copy / damaged).read_bytes()
    (copy / damaged).write_bytes(data[: len(data) // 2])  # cut short, as a broken copy leaves it
    result = serve_refused("--model", f"good={export}", "--model", f"cut={copy}")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.search(says, lines[0]) and lines[0].startswith("error:"), lines


def test_a_model_that_cannot_summarise_a_prompt_never_reports_ready(export, tmp_path):
    """Weights and tokenizer files whole and loadable, but the tokenizer ends every prompt with a token id the model
    does not have (a post-processor from another vocabulary): the model cannot serve a single request, so the server
    does not start (it used to report ready, then fail every request)."""
    import json as json_module

    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    tokenizer = json_module.loads((copy / "tokenizer.json").read_text())
    tokenizer["post_processor"]["special_tokens"]["</s>"]["ids"] = [10**6]
    (copy / "tokenizer.json").write_text(json_module.dumps(tokenizer))
    result = serve_refused("--model", f"good={export}", "--model", f"broken={copy}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr and "Serving" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1 and "model 'broken'" in errors[0] and "cannot summarise a short article" in errors[0], errors


def test_an_api_key_a_browser_cannot_send_is_refused_at_start(export):
    env = dict(os.environ, RESUMEN_API_KEY="clé-secrète")
    result = serve_refused("--model", str(export), env=env)
    assert result.returncode == 2 and result.stderr.startswith("error: RESUMEN_API_KEY must be printable ASCII")
