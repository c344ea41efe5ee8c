"""Audit a running portal with axe-core in Chromium, as each demo role.

See docs/web.md, "Accessibility".

By hand, not in CI: axe-core comes from the `axe-playwright-python` package, which is not a
dependency of the project; install it into a throwaway virtualenv (it brings Playwright, which
drives Debian's /usr/bin/chromium):

    python3 -m venv ../axe-venv && ../axe-venv/bin/pip install axe-playwright-python
    ../axe-venv/bin/python scripts/axe_audit.py --base http://127.0.0.1:5000 --password '...'

Each role signs in and walks the portal from its home page: every link of the same site, at most
two of each kind (`/review/items/<n>`) from one page and PER_KIND in all, so every tab of a queue
leads to items in its state. Downloads are left out. Every page is checked at 1366 px, or at
683 px with `--zoom` (a 1366 px screen zoomed to 200 %). Prints the violations by rule, and with
`--json` writes every one (page, element, summary). Exits 1 when one is serious or critical.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from urllib.parse import urldefrag, urljoin, urlsplit

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, sync_playwright

ROLES = [None, "dept01", "reviewer1", "verifier1", "scorer1", "auditor1", "admin"]
ANONYMOUS = ["/login", "/verify", "/publication/"]
SKIP = re.compile(r"\.(xlsx|csv|jsonl|docx|pdf|yaml|zip)$|/download|/preview|/api/|/static/")
PER_PAGE, PER_KIND = 2, 12


def kind(path: str) -> str:
    """The page a link leads to, without its ids and query values."""
    parts = urlsplit(path)
    keys = sorted(k.split("=")[0] for k in parts.query.split("&") if k)
    return re.sub(r"\d+", "N", parts.path) + ("?" + "&".join(keys) if keys else "")


def links(page: Page, base: str) -> list[str]:
    """Return the same-site paths the page links to."""
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    found = []
    for href in hrefs:
        url = urldefrag(urljoin(base, href))[0]
        if url.startswith(base) and not SKIP.search(urlsplit(url).path):
            found.append(url[len(base) :] or "/")
    return found


def walk(page: Page, base: str, start: list[str], limit: int) -> list[str]:
    """Visit pages from `start`, breadth first; return the paths visited."""
    queue, seen, visited = list(start), set(start), []
    per_kind: Counter[str] = Counter()
    while queue and len(visited) < limit:
        path = queue.pop(0)
        page.goto(base + path)
        visited.append(path)
        from_here: Counter[str] = Counter()
        for link in links(page, base):
            k = kind(link)
            if link in seen or from_here[k] >= PER_PAGE or per_kind[k] >= PER_KIND:
                continue
            seen.add(link)
            from_here[k] += 1
            per_kind[k] += 1
            queue.append(link)
    return visited


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:5000")
    parser.add_argument("--password", required=True, help="every demo user's password")
    parser.add_argument("--zoom", action="store_true", help="683 px: 1366 px zoomed to 200 %%")
    parser.add_argument("--pages", type=int, default=60, help="pages per role")
    parser.add_argument("--json", help="write every violation to this file")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    width, scale = (683, 2) if args.zoom else (1366, 1)
    axe = Axe()
    found = []
    with sync_playwright() as p:
        # --no-sandbox: Chromium refuses to start as root (a container) without it.
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        for user in ROLES:
            context = browser.new_context(
                viewport={"width": width, "height": 768 // scale}, device_scale_factor=scale
            )
            page = context.new_page()
            if user:
                page.goto(base + "/login")
                page.fill("input[name=username]", user)
                page.fill("input[name=password]", args.password)
                page.click('form[action="/login"] button.primary')
                page.wait_for_load_state()
            start = (["/"] if user else ANONYMOUS) + ["/no-such-page"]  # an error page too
            visited = walk(page, base, start, args.pages)
            print(f"{user or 'anonymous'}: {len(visited)} pages", file=sys.stderr)
            for path in visited:
                page.goto(base + path)
                for rule in axe.run(page).response["violations"]:
                    for node in rule["nodes"]:
                        found.append(
                            {
                                "role": user or "anonymous",
                                "path": path,
                                "rule": rule["id"],
                                "impact": rule["impact"],
                                "target": node["target"],
                                "summary": node.get("failureSummary", ""),
                            }
                        )
            context.close()
        browser.close()
    nodes = Counter((f["rule"], f["impact"]) for f in found)
    pages = defaultdict(set)
    for f in found:
        pages[f["rule"]].add((f["role"], f["path"]))
    for (rule, impact), n in nodes.most_common():
        print(f"{rule:32} {impact:9} {n:5} elements on {len(pages[rule])} pages")
    print(f"{len(found)} violations")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(found, out, ensure_ascii=False, indent=1)
    return 1 if any(f["impact"] in ("serious", "critical") for f in found) else 0


if __name__ == "__main__":
    sys.exit(main())
