#!/usr/bin/env python3
"""test_ui_browser.py: the /ui dashboard in headless Chromium. Starts carmine
with ui-flow.json (http endpoints that feed two ui_chart nodes), loads /ui,
feeds messages while the page is open, and checks what the page drew: the
chart figures report their points, series and last values in data-* attributes
and hold one SVG polyline per series (line chart) or one rect per value (bars).
Usage: test_ui_browser.py CARMINE. Prints "ok"/"not ok" lines and exits 1 on
a failure."""
import json
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import cdp  # noqa: E402
from carmine_proc import Carmine  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tap  # noqa: E402
from tap import check  # noqa: E402


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return r.status, r.read().decode()


def figure_attr(page, chart_id, attr):
    return page.eval("(function(){var f=document.getElementById('chart-%s');return f?f.getAttribute('%s'):null})()"
                     % (chart_id, attr))


def main():
    carmine = Carmine(sys.argv[1], os.path.join(HERE, "ui-flow.json"))
    browser = None
    try:
        port = carmine.port
        status, html = get(port, "/ui")
        check("GET /ui serves the page", status == 200 and "<svg" not in html and "Carmine dashboard" in html)
        check("the page loads nothing from elsewhere", "http://" not in html.replace("http://www.w3.org/2000/svg", "")
              and "https://" not in html)
        browser = cdp.Browser()
        page = browser.open("http://127.0.0.1:%d/ui" % port)
        drawn = page.wait_for("document.querySelectorAll('figure.chart').length", timeout=10)
        check("the page shows both charts", drawn == 2, "figures: %r" % drawn)
        check("an empty chart draws no line", page.wait_for(
            "(function(){var f=document.getElementById('chart-chart');return f&&f.getAttribute('data-version')!==null})()")
            and figure_attr(page, "chart", "data-points") == "0")
        # feed while the page is open: the long poll must bring the points in
        for topic, v in (("A", 1), ("A", 2), ("B", 10), ("A", 3), ("B", 20)):
            get(port, "/feed?topic=%s&v=%s" % (topic, v))
        points = page.wait_for("(function(){var f=document.getElementById('chart-chart');"
                               "return f&&f.getAttribute('data-points')==='5'})()", timeout=10)
        check("five fed points are drawn", points, "data-points=%s" % figure_attr(page, "chart", "data-points"))
        check("one series per topic", json.loads(figure_attr(page, "chart", "data-series") or "null") == ["A", "B"],
              figure_attr(page, "chart", "data-series"))
        check("the last values are the fed ones", json.loads(figure_attr(page, "chart", "data-last") or "null") == [3, 20],
              figure_attr(page, "chart", "data-last"))
        lines = page.eval("document.querySelectorAll('#chart-chart svg polyline').length")
        check("one polyline per series", lines == 2, "polylines: %r" % lines)
        coords = page.eval("Array.from(document.querySelectorAll('#chart-chart svg polyline')).map("
                           "function(p){return p.getAttribute('points').trim().split(/\\s+/).length})")
        check("the polylines hold 3 and 2 points", coords == [3, 2], "points: %r" % coords)
        legend = page.eval("document.querySelector('#chart-chart .legend').textContent")
        check("the legend names the series", legend == "AB", "legend: %r" % legend)
        get(port, "/feed?topic=A&v=abc")
        get(port, "/feed?topic=A&v=4")
        check("a non-number is ignored, the next point drawn", page.wait_for(
            "document.getElementById('chart-chart').getAttribute('data-points')==='6'", timeout=10),
            figure_attr(page, "chart", "data-points"))
        get(port, "/clear")
        cleared = page.wait_for("document.getElementById('chart-chart').getAttribute('data-points')==='0'", timeout=10)
        check("[] clears the chart on the page", cleared and page.eval(
            "document.querySelectorAll('#chart-chart svg polyline').length") == 0)
        for topic, v in (("Mon", 3), ("Tue", 5)):
            get(port, "/bar?topic=%s&v=%s" % (topic, v))
        bars = page.wait_for("document.querySelectorAll('#chart-barchart svg rect[data-series]').length===2", timeout=10)
        check("a bar chart draws one bar per label", bars,
              "rects: %r" % page.eval("document.querySelectorAll('#chart-barchart svg rect[data-series]').length"))
        foreign = page.eval("performance.getEntriesByType('resource').map(function(e){return e.name})"
                            ".filter(function(n){return n.indexOf(location.origin)!==0})")
        check("no request left the server's origin", foreign == [], "requests: %r" % foreign)
    finally:
        if browser:
            browser.close()
        carmine.stop()
    return tap.failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
