"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against the
local cluster: `kubectl conveyor dashboard` runs as the test's own identity, its pages load,
its counts are kubectl's, live updates arrive, and a retry pressed on a dead letter runs it.

Set CONVEYOR_SCREENSHOTS to a directory (docs/ for the committed ones) to keep the
screenshots of the main pages there; by default they go to the test's temp dir.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.fixtures import KubeCluster, wait_for
from tests.cluster.operator import free_port
from tests.integration.conftest import Jobs

pytestmark = pytest.mark.cluster

CHROMIUM = Path(os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium"))
VENV_BIN = Path(sys.executable).parent
FAIL_ON_FIRST = 'echo "attempt $CONVEYOR_ATTEMPT"; test "$CONVEYOR_ATTEMPT" != 1'


@contextlib.contextmanager
def dashboard(
    cluster: KubeCluster, namespace: str, *, allow_actions: bool, log: Path
) -> Iterator[str]:
    """`kubectl conveyor dashboard` (kubectl finds the plugin on PATH); yields its URL."""
    port = free_port()
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{Path(cluster.kubectl_path).parent}{os.pathsep}"
    env["PATH"] += os.environ.get("PATH", "")
    cmd = [cluster.kubectl_path, "conveyor", "dashboard", "-n", namespace, "--port", str(port)]
    cmd += ["--kubeconfig", cluster.kubeconfig]
    if allow_actions:
        cmd.append("--allow-actions")
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://localhost:{port}"
    try:
        import urllib.request

        def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the dashboard exited {proc.returncode}:\n{log.read_text()}")
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                return bool(response.status == 200)

        wait_for(healthy, timeout=30, desc="the dashboard listening, its watches listed")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


def screenshots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("CONVEYOR_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def kubectl_count(cluster: KubeCluster, namespace: str, selector: str) -> int:
    out = cluster.kubectl("get", "bgj", "-n", namespace, "--field-selector", selector, "-o", "name")
    return len(out.stdout.split())


def queue_cells(page: Any, queue: str) -> dict[str, str]:
    """The queue's row: column (waiting, delayed, ..., failed, state) → its text."""
    row = page.locator(f'[data-testid=queues] tr[data-queue="{queue}"]')
    cells = row.locator("td[data-col]")
    return dict(
        zip(
            cells.evaluate_all("cells => cells.map(c => c.dataset.col)"),
            [text.strip() for text in cells.all_inner_texts()],
            strict=True,
        )
    )


CELL = """(queue, col) => {
    const row = document.querySelector(`[data-testid=queues] tr[data-queue="${queue}"]`);
    const cell = row && row.querySelector(`td[data-col="${col}"]`);
    return cell ? cell.innerText.trim() : null;
}"""


def wait_cell(page: Any, queue: str, col: str, predicate: str) -> None:
    """Until the queue's cell satisfies `predicate` (a JS expression over `text`), live."""
    page.wait_for_function(
        f"([queue, col]) => {{ const text = ({CELL})(queue, col); "
        f"return text !== null && ({predicate}); }}",
        arg=[queue, col],
        timeout=20000,
    )


def open_view(page: Any, url: str) -> None:
    page.evaluate(
        "document.getElementById('view') && (document.getElementById('view').dataset.ready = '')"
    )
    page.goto(url)
    page.wait_for_selector("#view[data-ready=true]", timeout=15000)


def seed(jobs: Jobs) -> None:
    """Two queues, jobs in every state that matters, a dead letter, a chain, a schedule."""
    jobs.create_queue("email", concurrency=2)
    jobs.create_queue("reports", paused=True)
    for i in range(1, 4):
        jobs.create(
            f"send-{i}",
            f"echo sending {i}; printf '{{\"sent\": {i}}}' > /dev/termination-log",
            queue="email",
        )
    jobs.create("send-dead", FAIL_ON_FIRST, queue="email", retry={"maxAttempts": 1})
    jobs.create("invoice", "echo invoice", queue="reports", dependsOn=["send-1"])
    jobs.create("monthly", "echo monthly", queue="reports")
    jobs.create("nightly", "echo nightly", queue="reports", schedule="0 3 * * *")
    for i in range(1, 4):
        jobs.wait_phase(f"send-{i}", "Succeeded")
    jobs.wait_phase("send-dead", "Failed")
    jobs.wait("monthly", lambda s: s.get("phase") == "Queued", desc="queued behind the pause")
    jobs.wait("invoice", lambda s: s.get("phase") == "Queued", desc="queued behind the pause")


def test_the_dashboard_shows_what_kubectl_shows_and_a_retry_runs(
    jobs: Jobs, kube_cluster: KubeCluster, page: Any, tmp_path: Path
) -> None:
    seed(jobs)
    ns = jobs.namespace
    shots = screenshots(tmp_path)
    with dashboard(kube_cluster, ns, allow_actions=True, log=tmp_path / "dashboard.log") as url:
        # the queues: counts as kubectl counts them
        open_view(page, f"{url}/#/")
        page.wait_for_selector('[data-testid=queues] tr[data-queue="email"]')
        email = queue_cells(page, "email")
        assert (
            int(email["succeeded"])
            == kubectl_count(kube_cluster, ns, "spec.queue=email,status.phase=Succeeded")
            == 3
        )
        assert (
            int(email["failed"])
            == kubectl_count(kube_cluster, ns, "spec.queue=email,status.phase=Failed")
            == 1
        )
        reports = queue_cells(page, "reports")
        assert (
            int(reports["waiting"])
            == kubectl_count(kube_cluster, ns, "spec.queue=reports,status.phase=Queued")
            == 2
        )
        assert "paused" in reports["state"]
        assert page.locator("[data-testid=throughput] rect").count() > 0
        page.screenshot(path=str(shots / "dashboard-queues.png"), full_page=True)

        # jobs by phase, with search
        open_view(page, f"{url}/#/jobs?phase=Succeeded")
        names = page.locator("[data-testid=jobs] tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.job)"
        )
        assert sorted(names) == ["send-1", "send-2", "send-3"]
        assert page.locator('[data-tab="Failed"] .c').inner_text() == "1"
        page.fill("input[type=search]", "send-2")
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=jobs] tbody tr').length === 1", timeout=10000
        )
        open_view(page, f"{url}/#/jobs")
        page.screenshot(path=str(shots / "dashboard-jobs.png"), full_page=True)

        # a job's page: attempts with exit code and log tail, its result, its dependencies
        open_view(page, f"{url}/#/job/{ns}/send-2")
        assert page.locator("[data-testid=result]").inner_text() == '{"sent": 2}'
        open_view(page, f"{url}/#/job/{ns}/invoice")
        assert "send-1" in page.locator("[data-testid=dependencies]").inner_text()
        assert "Succeeded" in page.locator("[data-testid=dependencies]").inner_text()
        open_view(page, f"{url}/#/job/{ns}/nightly")
        assert page.locator('[data-action="run-now"]').count() == 1

        # the dead letter: press retry, and watch it run and succeed, live
        open_view(page, f"{url}/#/job/{ns}/send-dead")
        card = page.locator('[data-attempt="1"]')
        assert "exit code 1" in card.inner_text()
        assert "attempt 1" in card.locator("pre").last.inner_text()
        page.screenshot(path=str(shots / "dashboard-job.png"), full_page=True)
        page.click('[data-action="retry"]')
        page.wait_for_selector('h1 .phase[data-phase="Succeeded"]', timeout=60000)
        assert page.locator('[data-attempt="2"]').count() == 1
        status = jobs.status("send-dead")
        assert (status["phase"], status["attempts"]) == ("Succeeded", 2)

        # the queue's counts moved on the queues page without a reload
        open_view(page, f"{url}/#/")
        wait_cell(page, "email", "failed", "text === '0'")
        wait_cell(page, "email", "succeeded", "text === '4'")
        # resume the paused queue from the page: its jobs run
        page.locator('tr[data-queue="reports"] [data-action="resume"]').click()
        jobs.wait_phase("monthly", "Succeeded", timeout=60)
        wait_cell(page, "reports", "state", "text.includes('admitting')")


def test_read_only_by_default(
    jobs: Jobs, kube_cluster: KubeCluster, page: Any, tmp_path: Path
) -> None:
    """Without --allow-actions: no buttons, and the API refuses an action."""
    jobs.create("dead", "exit 1", retry={"maxAttempts": 1})
    jobs.wait_phase("dead", "Failed")
    with dashboard(
        kube_cluster, jobs.namespace, allow_actions=False, log=tmp_path / "d.log"
    ) as url:
        open_view(page, f"{url}/#/job/{jobs.namespace}/dead")
        assert page.locator('[data-action="retry"]').count() == 0
        assert "read-only" in page.locator("#mode").inner_text()
        refused = page.evaluate(
            f"""async () => (await fetch('/api/jobs/{jobs.namespace}/dead/retry',
                {{method: 'POST', headers: {{'X-Conveyor-Action': '1'}}}})).status"""
        )
        assert refused == 403
    assert jobs.status("dead").get("replayed") is None
    assert jobs.status("dead")["phase"] == "Failed"
