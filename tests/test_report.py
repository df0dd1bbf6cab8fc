"""compare.py --report: one self-contained HTML page, opened in the real headless Chromium a user would open it in."""

import shutil

import pytest

from resumen.app import compare
from resumen.app.report import build_report
from resumen.core.errors import ResumenError
from resumen.core.summary_metrics import METRICS, intervals, score_rows

ARTICLE = "El Ayuntamiento de Sevilla aprobó este martes un plan de vivienda de 40 millones de euros. La medida llegará a 9.000 familias."
REFERENCE = "Sevilla aprueba un plan de vivienda de 40 millones para 9.000 familias."
SUMMARIES = {
    "faithful": "El Ayuntamiento de Sevilla aprobó un plan de vivienda.",
    "unfaithful": "El Ayuntamiento de Málaga gastará 1.600 euros.",
}


def row(name, summary):
    values = {"model": name, "examples": 1}
    for key, interval in intervals(score_rows([summary], [REFERENCE], [ARTICLE])).items():
        values.update({key: interval.mean, f"{key}_low": interval.low, f"{key}_high": interval.high})
    return values


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        yield browser
        browser.close()


def test_the_report_shows_the_table_the_charts_and_the_marked_summaries_in_a_browser(browser, tmp_path):
    rows = [row(name, summary) for name, summary in SUMMARIES.items()]
    page_file = tmp_path / "report.html"
    page_file.write_text(build_report(rows, {name: [s] for name, s in SUMMARIES.items()}, [ARTICLE], [REFERENCE]), encoding="utf-8")
    text = page_file.read_text(encoding="utf-8")
    assert "<script" not in text and "src=" not in text and "http" not in text  # self-contained: nothing to fetch

    page = browser.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri())
    headers = page.locator("#metrics thead th").all_inner_texts()
    assert headers == ["model", *(m.label for m in METRICS)]
    first = page.locator("#metrics tbody tr").first.locator("td").all_inner_texts()
    assert first[0] == "faithful" and first[headers.index("ROUGE-L")].startswith(f"{rows[0]['rougeL']:.2f} [")
    assert page.locator(".chart").count() == len(METRICS) and page.locator(".chart svg rect.bar").count() == 2 * len(METRICS)

    unfaithful = page.locator(".summary[data-model='unfaithful']")
    assert unfaithful.locator("mark.unsupported").all_inner_texts() == ["Málaga", "1.600"]
    assert unfaithful.locator("mark.copied").all_inner_texts() == ["El Ayuntamiento de", "euros"]
    faithful = page.locator(".summary[data-model='faithful']")
    assert faithful.locator("mark.copied").all_inner_texts() == ["El Ayuntamiento de Sevilla aprobó", "un plan de vivienda"]
    assert faithful.locator("mark.unsupported").count() == 0
    assert requests == [page_file.as_uri()]  # nothing but the file itself was loaded
    page.close()


def test_compare_writes_the_report_for_models_and_baselines(sample_files, tmp_path):
    report = tmp_path / "report.html"
    compare.main(["--dataset", "--models", "lead-1", "oracle", "--data-file", sample_files["test"], "--report", str(report), "--report-examples", "2"])
    text = report.read_text(encoding="utf-8")
    assert text.count("<section class='example'>") == 2 and "<td>lead-1</td>" in text and "<td>(references)</td>" in text
    assert "data-model='oracle'" in text and "data-model='reference'" in text


@pytest.mark.parametrize(
    "args,message",
    [(["--report", "r.html"], "--report describes a test set: add --dataset"), (["--dataset", "--report", "r.pdf"], "ending in .html")],
)
def test_a_report_that_cannot_be_made_is_refused_before_any_work(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResumenError, match=message):
        compare.main(["--models", "google/flan-t5-small", *args])  # refused before the model would load
