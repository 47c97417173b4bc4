"""``stream-app report`` on a real stack: the sink in its own process (it owns the warehouse),
the command reading through its endpoint, the page opened in headless Chromium (Debian's
package; ``make test`` installs it) with every name lookup refused, so that a plot drawn proves
the page needs nothing from outside."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from models.registry import FileModelStore
from stream_app.control import promotion
from stream_app.control.commands import CommandKind
from stream_app.devtools.produce import ProduceOptions, produce
from stream_app.estimating.job import estimate
from stream_app.processes import settings_env
from stream_app.report.page import PLOTS
from tests.integration.conftest import count, serving_sink, wait_for, wait_until_stored

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
#: set by ``make test``, which installs Chromium first: then a missing one fails the test
REQUIRE_CHROMIUM = "REQUIRE_CHROMIUM"
#: the flags that work on this kind of machine (as root, no network), and no name resolves
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)  # fmt: skip


class PlotsInDom(HTMLParser):
    """Per plot ``<div id="plot-...">``: whether an ``svg.main-svg`` holding at least one drawn
    trace (``g.trace``) is inside it and the legend entries it drew; and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: dict[str, set[str]] = {}
        self.legends: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._legend_text: str | None = None  # the plot whose legend entry is open
        self._open: list[str | None] = []  # per open tag: the plot it opens, if any

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        element_id, classes = attributes.get("id") or "", (attributes.get("class") or "").split()
        opens = element_id if tag == "div" and element_id.startswith("plot-") else None
        if opens:
            self.plots[opens] = set()
        inside = next((plot for plot in reversed(self._open) if plot), None)
        if inside:
            self.plots[inside].update(c for c in classes if c in ("main-svg", "trace"))
            self._legend_text = inside if "legendtext" in classes else None
        if tag not in ("br", "img", "input", "meta", "link", "path", "rect", "line", "circle"):
            self._open.append(opens)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("path", "rect", "line", "circle"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._legend_text:
            self.legends.setdefault(self._legend_text, []).append(data)
            self._legend_text = None


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it."""
    done = subprocess.run(
        [
            CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=15000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


def write_report(settings, out: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-m", "stream_app", "report", "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, timeout=180, check=False)


def needs_chromium() -> None:
    """Skip without Chromium, or fail when ``make test`` said it is there."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get(REQUIRE_CHROMIUM):
        pytest.fail(
            f"no Chromium at {CHROMIUM}, though `make test` installs it: the install failed"
        )
    pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs it")


def test_report_renders_every_plot_in_chromium(make_settings, running_worker, tmp_path):
    needs_chromium()
    # the run spans about 3 minutes of event time: calibrate the estimate on its first 72 s
    settings = make_settings(
        warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}", estimate_reference_hours=0.02,
        estimate_min_reference_frauds=5,
    )  # fmt: skip
    with serving_sink(settings, tmp_path) as (_, settings):
        # an empty warehouse: a page that says so, no plot, no traceback
        empty = write_report(settings, tmp_path / "empty.html")
        assert empty.returncode == 0, empty.stderr.decode()
        empty_page = (tmp_path / "empty.html").read_text()
        assert "has no predictions and no dead letters yet" in empty_page
        assert 'id="plot-' not in empty_page

        options = ProduceOptions(
            events=3000, bad_fraction=0.03, fraud_rate=0.05, labels=True, seed=5
        )
        with running_worker(settings):
            report = produce(settings, options)
            wait_until_stored(settings, report)
            champion = FileModelStore(settings.model_dir).aliases()["champion"]
            promotion.issue(settings, CommandKind.PROMOTE, champion, 30, "pytest", set())
            wait_for(
                lambda: count(settings, "SELECT count() FROM control_events WHERE "
                              "status = 'applied'") > 0,
                60, "the promotion acknowledged and stored",
            )  # fmt: skip
        wait_for(
            lambda: count(settings, "SELECT count() FROM labels_raw") == report.labels, 60,
            "labels stored",
        )  # fmt: skip
        estimates = estimate(settings)
        assert estimates, "no window estimated"
        wait_for(
            lambda: count(settings, "SELECT count() FROM quality_estimates") == len(estimates),
            60, "estimates stored",
        )  # fmt: skip
        written = write_report(settings, tmp_path / "report.html")
    assert written.returncode == 0, written.stderr.decode()
    page = tmp_path / "report.html"
    html = page.read_text()
    assert "<script src=" not in html and "<link" not in html  # nothing loaded from elsewhere
    assert f"<th>predictions</th><td>{report.valid:,}</td>" in html

    dom = PlotsInDom()
    dom.feed(rendered_dom(page, tmp_path))
    assert set(dom.plots) == {f"plot-{plot.key}" for plot in PLOTS}  # every section drew
    for plot, found in dom.plots.items():
        assert found == {"main-svg", "trace"}, f"{plot} not rendered: {found}"
    text = " ".join(dom.text)
    assert "model change" in text  # the promotion marked on the time axis
    # the estimate drawn beside the realised figures, its band too
    drawn = dom.legends["plot-quality"]
    assert any(name.startswith("estimated roc_auc · model ") for name in drawn), drawn
    assert any(name.startswith("interval of the estimated roc_auc") for name in drawn), drawn
