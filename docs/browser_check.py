"""Look at the built documentation in a real browser, offline, as a reader would.

Run it after the HTML build (``.ci/run`` does both)::

    MPLBACKEND=Agg sphinx-build -W --keep-going -b html docs docs/_build/html
    python docs/browser_check.py

It needs Playwright for Python (the ``docs-check`` extra) and a Chromium: Debian's
``chromium`` package (``/usr/bin/chromium``), or ``--chromium PATH``. Playwright's own
browser downloads are not used.

First it reads every HTML and CSS file of the build for a script, stylesheet, image,
frame or font loaded from the network (``http://``, ``https://`` or ``//``). Then it opens
a few pages from ``file://`` in headless Chromium with the network off (an offline
browser context, a proxy that does not exist, no background services), at a desktop
width (1280 px) and a phone width (390 px), and checks on each:

* every request stayed on this machine (``file:`` or ``data:``), and every file the
  page asked for exists in the build;
* the maths is typeset: each of Sphinx's ``.math`` elements holds MathJax output, and
  no TeX is left in the rendered text;
* nothing is wider than the viewport, unless it scrolls inside a box that fits (display
  maths, code, tables); display maths that does not fit its column scrolls instead of
  being clipped;
* the layout: no section title is a link (the back-links of a ``contents`` directive),
  no contents list in the body, the top navigation fits in one row at the desktop
  width, a left sidebar holds links when it is shown, and no name in the API's method
  tables is cut off.

Screenshots of every page at both widths (the top of the page, and the part that is
hardest to lay out: wide maths, a figure, a table) are written to
``docs/_build/screenshots/`` for people to look at. Exits with status 1 and a list of
the problems found, 0 when there are none.
"""

import argparse
import re
import shutil
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# The pages opened, and what to show in the second screenshot of each (a CSS selector).
PAGES = {
    "index.html": "img",
    "getting_started.html": "div.highlight",
    "user_guide.html": 'mjx-container[display="true"] mjx-mtable',
    "performance.html": "table",
    "auto_examples/plot_decision_boundaries.html": "img.sphx-glr-single-img, img",
    "generated/sklearn_bp.BackpropClassifier.html": "table.autosummary",
}
WIDTHS = {"desktop": (1280, 800), "phone": (390, 844)}

# Chromium with no network: no background services, and a proxy on a closed local port
# for anything that would still try (the browser context is offline as well).
CHROMIUM_ARGS = [
    "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--no-default-browser-check", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
]

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


# --------------------------------------------------------------------------------------
# 1. The files of the build
# --------------------------------------------------------------------------------------

_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_LOADED = {  # tag -> the attributes whose URL the browser loads without a click
    "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "embed": ("src",),
    "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
    "object": ("data",), "input": ("src",),
}
_LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
              "shortcut", "apple-touch-icon", "manifest", "dns-prefetch", "preconnect"}


class _RemoteLoads(HTMLParser):
    """The URLs of an HTML file that a browser would fetch from the network."""

    def __init__(self):
        super().__init__()
        self.found = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        names = _LOADED.get(tag, ())
        if tag == "link" and _LINK_RELS & set((attrs.get("rel") or "").lower().split()):
            names = ("href",)
        for name in names:
            value = attrs.get(name) or ""
            if _REMOTE.match(value):
                self.found.append(f"<{tag} {name}={value!r}>")
        if "url(" in (attrs.get("style") or ""):
            self.found += _css_remote_urls(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.found += _css_remote_urls(data)


def _css_remote_urls(css):
    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
    urls += re.findall(r"@import\s+['\"]([^'\"]+)", css)
    return [f"url({url})" for url in urls if _REMOTE.match(url)]


def check_files(build):
    """Every script, stylesheet, image, frame and font of the build is a local file."""
    problems = []
    for path in sorted(build.rglob("*.html")):
        parser = _RemoteLoads()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        problems += [f"{path.relative_to(build)} loads {what}" for what in parser.found]
    for path in sorted(build.rglob("*.css")):
        css = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{path.relative_to(build)} loads {what}"
                     for what in _css_remote_urls(css)]
    return problems


# --------------------------------------------------------------------------------------
# 2. The pages in Chromium
# --------------------------------------------------------------------------------------

# Runs in the page once MathJax has finished; returns a list of problems (strings) and
# some measurements. Kept in one function so that a page is measured in one round trip.
_INSPECT = r"""
async ({desktop}) => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  const problems = [];
  const vw = document.documentElement.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.classList.length ? "." + [...el.classList].slice(0, 3).join(".") : "");
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const fits = (r) => r.left >= -1 && r.right <= vw + 1;

  // Maths: every .math element typeset, no TeX left in the text.
  const maths = [...document.querySelectorAll("span.math, div.math")];
  const untypeset = maths.filter((el) => !el.querySelector("mjx-container"));
  if (untypeset.length) {
    problems.push(`${untypeset.length} of ${maths.length} maths not typeset, first: `
                  + JSON.stringify(untypeset[0].textContent.slice(0, 80)));
  }
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const tex = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(skip)) continue;
    const m = node.textContent.match(/\\(?:[a-zA-Z]{2,}|[()[\]])|\$\$/);
    if (m) tex.push(JSON.stringify(node.textContent.trim().slice(0, 80)));
  }
  if (tex.length) problems.push(`raw TeX in the text (${tex.length}), first: ${tex[0]}`);
  const errors = document.querySelectorAll("mjx-merror");
  if (errors.length) {
    problems.push(`${errors.length} TeX errors, first: ${errors[0].textContent}`);
  }

  // Widths: nothing outside the viewport unless a box that fits scrolls or clips it.
  if (document.documentElement.scrollWidth > vw + 1) {
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a `
                  + `${vw} px viewport`);
  }
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (fits(r) || !shown(el) || wide.some((w) => w.contains(el))) continue;
    let held = false;  // a box that fits and scrolls or clips it holds it
    for (let box = el.parentElement; box && !held; box = box.parentElement) {
      held = getComputedStyle(box).overflowX !== "visible"
             && fits(box.getBoundingClientRect());
    }
    if (!held) wide.push(el);
  }
  for (const el of wide.slice(0, 5)) {
    const r = el.getBoundingClientRect();
    problems.push(`${name(el)} spans ${Math.round(r.left)} to ${Math.round(r.right)} px `
                  + `in a ${vw} px viewport`);
  }

  // Display maths: fits its column, or scrolls (never clipped).
  const displays = [...document.querySelectorAll('mjx-container[display="true"]')];
  let scrolling = 0, widest = 0;
  for (const el of displays) {
    const column = el.closest("article") || el.parentElement;
    const r = el.getBoundingClientRect(), c = column.getBoundingClientRect();
    widest = Math.max(widest, el.scrollWidth);
    if (r.right > c.right + 1 || r.left < c.left - 1) {
      problems.push(`display maths wider than its column (${Math.round(r.width)} px in `
                    + `${Math.round(c.width)} px): ${el.textContent.slice(0, 40)}`);
    }
    if (el.scrollWidth > el.clientWidth + 1) {
      scrolling += 1;
      if (!["auto", "scroll"].includes(getComputedStyle(el).overflowX)) {
        problems.push(`display maths clipped (${el.scrollWidth} px of content in `
                      + `${el.clientWidth} px): ${el.textContent.slice(0, 40)}`);
      }
    }
  }

  // Layout.
  const backlinks = document.querySelectorAll("a.toc-backref, h1 a[role=doc-backlink], "
                                              + "h2 a[role=doc-backlink], h3 a[role=doc-backlink]");
  if (backlinks.length) problems.push(`${backlinks.length} section titles are links`);
  if (document.querySelector("article nav.contents, article div.contents.topic")) {
    problems.push("a contents list in the body (the right sidebar has one)");
  }
  const header = document.querySelector(".bd-header");
  let headerHeight = null;
  if (desktop && header) {
    headerHeight = Math.round(header.getBoundingClientRect().height);
    const middles = [...header.querySelectorAll(".navbar-item, .nav-item")]
      .filter(shown).map((el) => {
        const r = el.getBoundingClientRect();
        return (r.top + r.bottom) / 2;
      });
    if (Math.max(...middles) - Math.min(...middles) > 16) {
      problems.push("the top navigation wraps to more than one row");
    }
  }
  const sidebar = document.querySelector(".bd-sidebar-primary");
  if (desktop && sidebar && shown(sidebar) && fits(sidebar.getBoundingClientRect())
      && ![...sidebar.querySelectorAll("nav a[href]:not([href^='#'])")].some(shown)) {
    problems.push("the left sidebar is shown with no links in it");
  }
  // Names cut off: a link in a navigation list reaching past the box that clips or
  // scrolls it (a sidebar), or an API table of methods wider than its column.
  const cut = [];
  for (const el of document.querySelectorAll("nav a, nav code")) {
    if (!shown(el) || cut.some((c) => c.contains(el))) continue;
    let box = el.parentElement;
    while (box && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
    if (!box || !shown(box)) continue;
    const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    if (r.right > b.right + 1 || r.left < b.left - 1) cut.push(el);
  }
  for (const el of cut.slice(0, 3)) {
    problems.push(`cut off: ${JSON.stringify(el.textContent.trim())} reaches past `
                  + "the box that holds it");
  }
  for (const table of document.querySelectorAll("table.autosummary")) {
    const r = table.getBoundingClientRect();
    const c = table.closest("article").getBoundingClientRect();
    if (shown(table) && (r.right > c.right + 1 || r.left < c.left - 1)) {
      problems.push(`an API table is ${Math.round(r.width)} px wide in a `
                    + `${Math.round(c.width)} px column`);
    }
  }
  return {problems, maths: maths.length, displays: displays.length, scrolling, widest,
          width: document.documentElement.scrollWidth, viewport: vw, headerHeight};
}
"""


def _find_chromium(path):
    for candidate in ([path] if path else
                      ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def check_pages(build, shots, chromium):
    """Open each page of PAGES at each width of WIDTHS; return (problems, report)."""
    from playwright.sync_api import sync_playwright

    problems, report = [], []
    requests, failures = [], []
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=CHROMIUM_ARGS)
        for label, (width, height) in WIDTHS.items():
            context = browser.new_context(
                viewport={"width": width, "height": height}, offline=True,
                is_mobile=label == "phone", has_touch=label == "phone",
                service_workers="block",
            )
            context.on("request", lambda request: requests.append(request.url))
            context.on("requestfailed", lambda request: failures.append(
                f"{request.url} ({request.failure})"))
            # Anything that is not a local file is refused before it leaves the browser.
            context.route(re.compile(r"^(?!file:|data:|blob:)"),
                          lambda route: route.abort("internetdisconnected"))
            for page_path, focus in PAGES.items():
                if not (build / page_path).exists():
                    problems.append(f"{page_path}: not in the build")
                    continue
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto((build / page_path).as_uri(), wait_until="load")
                result = page.evaluate(_INSPECT, {"desktop": label == "desktop"})
                where = f"{page_path} at {width} px"
                problems += [f"{where}: {problem}" for problem in result["problems"]]
                problems += [f"{where}: script error: {error}" for error in errors]
                report.append(
                    f"{where}: {result['maths']} maths ({result['displays']} displayed, "
                    f"{result['scrolling']} scrolling in their box, widest "
                    f"{result['widest']} px), page {result['width']} px wide"
                    + (f", header {result['headerHeight']} px high"
                       if result["headerHeight"] is not None else "")
                )
                stem = page_path.removesuffix(".html").replace("/", "-")
                page.screenshot(path=shots / f"{stem}-{label}.png")
                target = page.locator(focus).first
                if target.count():
                    target.scroll_into_view_if_needed()
                    page.evaluate("window.scrollBy(0, -60)")
                    page.screenshot(path=shots / f"{stem}-{label}-detail.png")
                page.close()
            context.close()
        browser.close()
    remote = [url for url in requests if not url.startswith(LOCAL_SCHEMES)]
    problems += [f"a request left the machine (blocked): {url}" for url in remote]
    problems += [f"a request failed: {failure}" for failure in failures
                 if not failure.startswith(tuple(remote))]
    report.append(f"{len(requests)} requests, {len(requests) - len(remote)} to local "
                  f"files, {len(remote)} to the network, {len(failures)} failed")
    return problems, report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", type=Path, default=ROOT / "_build" / "html",
                        help="the HTML build (default: docs/_build/html)")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "_build" / "screenshots",
                        help="where to write the screenshots (default: "
                             "docs/_build/screenshots)")
    parser.add_argument("--chromium", help="the Chromium executable (default: "
                                           "/usr/bin/chromium, else one on the PATH)")
    args = parser.parse_args(argv)
    build = args.build.resolve()
    if not (build / "index.html").exists():
        sys.exit(f"no HTML build in {build}: run sphinx-build first")
    chromium = _find_chromium(args.chromium)
    if chromium is None:
        sys.exit("no Chromium found: install Debian's chromium package, or pass --chromium")

    start = time.perf_counter()
    problems = check_files(build)
    page_problems, report = check_pages(build, args.screenshots.resolve(), chromium)
    problems += page_problems
    print("\n".join(report))
    print(f"screenshots in {args.screenshots}; {time.perf_counter() - start:.1f} s")
    if problems:
        print(f"\n{len(problems)} problem(s):", *problems, sep="\n  ")
        return 1
    print("no problems found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
