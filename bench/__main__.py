"""`python -m bench`: run the benchmarks, print ONE table, write docs/benchmarks.md (`make bench`).

    python -m bench                       # all of them; writes docs/benchmarks.md
    python -m bench queue audit           # only these; prints the table, leaves the docs alone
    python -m bench upload --upload-mb 1024 --write   # the 1 GB figure, recorded for the docs

Every figure is the median of repeated runs (`--repeat`, default 3; the queue pages 30) and
every ratio compares two things measured in the same run, because the machine is shared.
The 1 GB upload is long; it runs only when asked (`--upload-mb 1024`) and is then recorded in
bench/results/upload-1024mb.json, which docs/benchmarks.md quotes with its date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

NAMES = ["queue", "transitions", "bulk", "upload", "notices", "audit", "notify"]
DOCS = ROOT / "docs" / "benchmarks.md"
#: docs/benchmarks.md from this line on is written by hand (analyses, before/after figures of
#: a change); `make bench` keeps it as it is below the figures it writes.
NOTES_MARK = "<!-- Notes written by hand: make bench keeps everything from here on. -->"
RESULTS = HERE / "results"
MIB = 1024 * 1024


@dataclass
class Row:
    """One line of the table."""

    benchmark: str
    measure: str
    figure: str
    ratio: str = ""
    target: str = ""


@dataclass
class Report:
    """The rows, plus longer details (tables, plans) for the document."""

    rows: list[Row] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)


QUEUE_NOTE = (
    "The database part is well under a millisecond at every size (plans below): the first "
    "page walks `ix_items_queue` (assessment_id, state, id) and stops after 51 entries; for "
    "the deep page the planner prefers the primary key from the cursor on and filters the "
    "other states out (a fifth of the ids match here, so about 250 rows are read), and with "
    "a rarer state it uses `ix_items_queue` with `id > cursor` in the index condition. "
    "Either way the work does not grow with the table. Most of the ~6 ms is the app: token "
    "check, the two `selectinload` queries and JSON."
)


def run_queue(args: argparse.Namespace, report: Report) -> None:
    """Queue pages at 1k/10k/100k items."""
    from bench import bench_queue

    results = bench_queue.run(args.queue_sizes, args.queue_repeat)
    base = results.sizes[0]
    for r in results.sizes:
        for label, ms, base_ms in (
            ("first page", r.first_ms, base.first_ms),
            ("deep page", r.deep_ms, base.deep_ms),
        ):
            last = r is results.sizes[-1]
            report.rows.append(
                Row(
                    "queue",
                    f"{label}, {r.items:,} items ({r.queue:,} submitted)",
                    f"{ms:.2f} ms",
                    f"{ms / base_ms:.2f}× of {base.items:,}",
                    (
                        f"≤ 2× ({'met' if ms / base_ms <= 2 else 'missed'})"
                        if last and r is not base
                        else ""
                    ),
                )
            )
    text = (
        f"GET /api/v1/assessments/{{aid}}/items?state=submitted&limit=50 as a reviewer through "
        f"the Flask test client (token check, query, the two `selectinload` queries of "
        f"departments and indicators, JSON). Median of {results.repeat} requests after 3 "
        f"warm-up requests. Each size is a fresh database holding only that many items, in "
        f"one assessment (the 2018 scheme's 26 departments plus synthetic ones, 10 items "
        f"each, made with INSERT … SELECT); a fifth of them are `submitted`. The deep page "
        f"starts from a cursor 90 % down the queue.\n\n"
        + bench_queue.table(results)
        + "\n\n"
        + QUEUE_NOTE
    )
    report.details.append(("Reviewer's queue page", text))
    for label, plan in results.plans.items():
        report.details.append(
            (
                f"Plan of the {label} at {results.sizes[-1].items:,} items",
                "```\n" + plan + "\n```",
            )
        )


def run_transitions(args: argparse.Namespace, report: Report) -> None:
    """Transitions per second with the audit chain vs. a bare UPDATE + INSERT."""
    from bench import bench_transitions

    m = bench_transitions.measure(args.repeat)
    count, e, b, f, r, c, d = m.count, m.engine, m.bare, m.floor, m.same, m.chained, m.driver
    report.rows.append(
        Row(
            "transitions",
            f"with guards + audit chain ({count} per run, one tx each)",
            f"{count / e:.0f} /s",
            f"{r / e:.2f} of the same rows",
            f"≥ 0.5× ({'met' if r / e >= 0.5 else 'not met'})",
        )
    )
    report.rows.append(
        Row(
            "transitions",
            "the least guarded, chained transition: locking read, state check, hash, the "
            "engine's one write of item + head + event (no ORM, no engine)",
            f"{count / c:.0f} /s",
            f"{r / c:.2f} of the same rows",
        )
    )
    report.rows.append(
        Row(
            "transitions",
            "the same least transition, its two statements on the driver's cursor",
            f"{count / d:.0f} /s",
            f"{r / d:.2f} of the same rows",
        )
    )
    report.rows.append(
        Row(
            "transitions",
            "the light pair in a request's ORM session, after a locking read (no engine)",
            f"{count / f:.0f} /s",
            f"{r / f:.2f} of the same rows",
        )
    )
    report.rows.append(
        Row(
            "transitions",
            "bare UPDATE + INSERT of the same rows (the event in a copy of audit_events)",
            f"{count / r:.0f} /s",
            "1.00",
        )
    )
    report.rows.append(
        Row(
            "transitions",
            "bare UPDATE + INSERT, light rows (an unindexed table)",
            f"{count / b:.0f} /s",
            f"{r / b:.2f} of the same rows",
        )
    )


def run_bulk(args: argparse.Namespace, report: Report) -> None:
    """A bulk review of 500 items vs. 500 single review transitions, back to back."""
    from bench import bench_bulk

    count = 500
    m = bench_bulk.medians(bench_bulk.measure(args.repeat, count))
    ratio = m.single / m.bulk
    report.rows.append(
        Row(
            "bulk",
            f"{count} single review transitions back to back (one tx each)",
            f"{count / m.single:.0f} /s",
            "1.00",
        )
    )
    report.rows.append(
        Row(
            "bulk",
            f"bulk review of {count} (apply_bulk: one tx and event per item)",
            f"{count / m.bulk:.0f} /s",
            f"{ratio:.2f}× of single",
            f"≥ 0.5× ({'met' if ratio >= 0.5 else 'missed'})",
        )
    )
    report.rows.append(
        Row("bulk", f"dry run of {count} (preview, nothing written)", f"{m.preview:.2f} s")
    )
    report.details.append(("Bulk review", BULK_NOTE))


BULK_NOTE = (
    "`bench/bench_bulk.py`: each repeat builds a fresh world (the 2018 scheme plus synthetic "
    "departments, 1,000 items put in `submitted` with one UPDATE; review reads no evidence), "
    "then reviews 500 items one by one — per item a session, `transition_item`, a commit, as "
    "one API request would — and the other 500 with one `apply_bulk`, which opens a session "
    "and commits a transaction with its own audit event per item. The two paths alternate "
    "which goes first. The ratio is single seconds / bulk seconds; the target ≥ 0.5× means a "
    "bulk item costs at most twice a single transition. The bulk path does the same work per "
    "item plus one read of the user (it holds no session across items), so it runs at about "
    "the single path's speed; the dry run reads every item once and writes nothing. Every "
    "run of up to 500 items is synchronous until the job queue of issue 14."
)


def run_upload(args: argparse.Namespace, report: Report) -> None:
    """Evidence upload through ingest + S3Store vs. a bare minio put, on moto (in a child) and,
    when scripts/ceph-s3.sh's radosgw is up, on it too."""
    from bench import bench_upload

    servers = ["moto"] + (["radosgw"] if bench_upload.real_server_up() else [])
    record: dict[str, object] = {
        "date": dt.date.today().isoformat(),
        "mb": args.upload_mb,
        "repeat": args.repeat,
    }
    for server in servers:
        figures = upload_figures(args, server)
        suffix = "" if server == "moto" else f" ({server})"
        record.update({k if server == "moto" else f"{k}_{server}": v for k, v in figures.items()})
        mb = args.upload_mb
        report.rows.append(
            Row(
                f"upload{suffix}",
                f"minio put_object, {mb} MiB",
                f"{figures['direct_mb_s']:.1f} MB/s",
                "1.00",
                f"peak RSS +{figures['direct_peak_rss_mb']:.0f} MB",
            )
        )
        report.rows.append(
            Row(
                f"upload{suffix}",
                f"ingest_upload → S3Store, {mb} MiB",
                f"{figures['ingest_mb_s']:.1f} MB/s",
                f"{figures['ratio']:.2f} of direct",
                f"peak RSS +{figures['ingest_peak_rss_mb']:.0f} MB",
            )
        )
    if args.write and args.upload_mb >= 1024:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"upload-{args.upload_mb}mb.json"
        path.write_text(json.dumps(record, indent=2) + "\n")


def upload_figures(args: argparse.Namespace, server: str) -> dict[str, float]:
    """Median MB/s and the largest RSS growth of both upload paths against *server*."""
    from bench import bench_upload

    size = args.upload_mb * MIB
    runs = [
        bench_upload.run(size, part_size=8 * MIB, parallel=1, trace=False, server_name=server)
        for _ in range(args.repeat)
    ]
    direct = statistics.median(r[0].seconds for r in runs)
    ingest = statistics.median(r[1].seconds for r in runs)
    return {
        "direct_mb_s": args.upload_mb / direct,
        "ingest_mb_s": args.upload_mb / ingest,
        "ratio": direct / ingest,
        "direct_peak_rss_mb": max(r[0].rss_growth for r in runs) / MIB,
        "ingest_peak_rss_mb": max(r[1].rss_growth for r in runs) / MIB,
    }


def run_notices(args: argparse.Namespace, report: Report) -> None:
    """Word notices for a city (26) and a province-sized batch (1,000)."""
    from bench import bench_notices

    bench_notices.render_notice(bench_notices.synthetic_notice(1, 1))  # warm up
    per: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for label, count in (("city", 26), ("large", 1000)):
            notices, summary, _ = bench_notices.run_case(label, count, None)
            per.setdefault(f"{label}:n", []).append(notices.seconds)
            per.setdefault(f"{label}:s", []).append(summary.seconds)
    city_n = statistics.median(per["city:n"]) / 26
    for label, count in (("city", 26), ("large", 1000)):
        n = statistics.median(per[f"{label}:n"])
        s = statistics.median(per[f"{label}:s"])
        report.rows.append(
            Row(
                "notices",
                f"{count} department notices (.docx)",
                f"{n:.2f} s",
                f"{n / count / city_n:.2f} per notice of 26",
            )
        )
        report.rows.append(Row("notices", f"summary table of {count} rows", f"{s:.2f} s"))


def run_audit(args: argparse.Namespace, report: Report) -> None:
    """Verify and reconcile a trail of 1,000,000 events."""
    from bench.bench_audit import build_world
    from bench.bench_transitions import DEFAULT_URL
    from workflow import audit
    from workflow.audit import verify_chain
    from workflow.db import make_engine, make_sessionmaker
    from workflow.reconcile import reconcile

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    build_world(url, args.events)
    engine = make_engine(url)
    default_min = audit.PARALLEL_MIN_EVENTS
    runs: dict[str, list[float]] = {"sequential": [], "default": [], "reconcile": []}
    for _ in range(args.repeat):
        for label in runs:
            audit.PARALLEL_MIN_EVENTS = args.events * 2 if label == "sequential" else default_min
            try:
                with make_sessionmaker(engine)() as s:
                    started = time.perf_counter()
                    if label == "reconcile":
                        tables = reconcile(s)
                        assert tables.ok, tables.differences[:5]
                    else:
                        result = verify_chain(s)
                        assert result.ok and result.events >= args.events, result
                    runs[label].append(time.perf_counter() - started)
            finally:
                audit.PARALLEL_MIN_EVENTS = default_min
    engine.dispose()
    median, sequential, tables_s = (
        statistics.median(runs[k]) for k in ("default", "sequential", "reconcile")
    )
    met = median * 1_000_000 / args.events < 10
    path = "parallel" if args.events >= default_min else "sequential"
    report.rows.append(
        Row(
            "audit",
            f"verify_chain, {args.events:,} events ({path}, {os.cpu_count()} processes)",
            f"{median:.2f} s",
            f"{sequential / median:.2f}× the one-process pass",
            f"< 10 s per 1,000,000 ({'met' if met else 'missed'})",
        )
    )
    report.rows.append(
        Row(
            "audit",
            "verify_chain in one process (for the ratio)",
            f"{sequential:.2f} s",
            f"{args.events / sequential:,.0f} events/s",
        )
    )
    ratio = tables_s / median
    report.rows.append(
        Row(
            "audit",
            f"reconcile the tables with the same trail ({path}, {os.cpu_count()} processes)",
            f"{tables_s:.2f} s",
            f"{ratio:.2f}× verify_chain; audit verify (both) {1 + ratio:.2f}×",
            f"reconcile ≤ 2× verify_chain ({'met' if ratio <= 2 else 'missed'})",
        )
    )
    report.details.append(("Audit trail: verification and reconciliation", AUDIT_NOTE))


AUDIT_NOTE = (
    "One world serves both figures (`bench/bench_audit.py`): the 2018 scheme installed over "
    "synthetic departments by the real `install_scheme`, then about ten events per item "
    "written with COPY the way the operations write them — two uploads, submit, return, a "
    "removal, an upload (a not-involved proof on every third item), resubmit, review, "
    "verify with rulings, score, and on every tenth item appeal and rescore — interleaved "
    "over the items, so one item's events are spread over the whole chain. The live rows "
    "(items, evidence, scores, claims) are what those operations leave. `verify_chain` "
    "recomputes every hash; `reconcile` replays every item's events and compares them with "
    'the rows (docs/workflow.md, "Reconciliation"); both must pass. `audit verify` runs '
    "both, so it takes 1 + the reconcile ratio times the chain verification alone."
)


def run_notify(args: argparse.Namespace, report: Report) -> None:
    """Reminders for 1,000 departments × 10 items; outbox delivery vs. a bare smtplib loop."""
    from bench import bench_notify

    count = 500
    m = bench_notify.medians(bench_notify.measure(args.repeat, count))
    report.rows.append(
        Row(
            "notify",
            f"daily reminders, 1,000 departments × 10 items ({m.reminder_rows} written)",
            f"{m.reminders:.2f} s",
            "",
            f"< 5 s ({'met' if m.reminders < 5 else 'missed'})",
        )
    )
    report.rows.append(
        Row(
            "notify",
            f"bare smtplib loop, {count} e-mails to aiosmtpd",
            f"{count / m.bare:.0f} /s",
            "1.00",
        )
    )
    ratio = m.bare / m.ours
    report.rows.append(
        Row(
            "notify",
            f"outbox delivery of {count} e-mails (lease, send, record each attempt)",
            f"{count / m.ours:.0f} /s",
            f"{ratio:.2f}× of bare",
            f"≥ 0.5× ({'met' if ratio >= 0.5 else 'missed'})",
        )
    )
    report.details.append(("Notifications", NOTIFY_NOTE))


NOTIFY_NOTE = (
    "`bench/bench_notify.py`: the reminders run over the 2018 scheme plus 1,000 synthetic "
    "departments × 10 items (a third submitted), one department user each and 11 staff, with "
    "自评提交截止 two working days away: one `send_reminders` computes the stage calendar, "
    "counts items per state and department in one query, checks the day's keys and writes "
    "every notification in two INSERTs. Delivery sends 500 outbox e-mails to aiosmtpd on "
    "loopback with `deliver_due` (lease 200 at a time in one UPDATE … RETURNING, one SMTP "
    "connection, the attempts and new states recorded per batch) against a loop that builds "
    "the same messages and sends them over one smtplib connection; the two alternate which "
    "goes first. Both include building the MIME message; the SMTP server runs in the same "
    "process, so the figures are noisy under load."
)


RUNNERS: dict[str, Callable[[argparse.Namespace, Report], None]] = {
    "queue": run_queue,
    "transitions": run_transitions,
    "bulk": run_bulk,
    "upload": run_upload,
    "notices": run_notices,
    "audit": run_audit,
    "notify": run_notify,
}


def table(rows: list[Row]) -> str:
    """Render the rows as one markdown table."""
    lines = ["| benchmark | measure | figure | ratio | target / note |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.benchmark} | {r.measure} | {r.figure} | {r.ratio} | {r.target} |" for r in rows
    ]
    return "\n".join(lines)


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine() -> str:
    """Describe this machine: CPU, cores, memory, Python and PostgreSQL versions."""
    memory_kb = _first("/proc/meminfo", "MemTotal").split()[0]
    try:
        memory = f"{int(memory_kb) / 1024 / 1024:.1f} GiB"
    except ValueError:
        memory = "unknown"
    try:
        from sqlalchemy import create_engine, text

        from bench.bench_transitions import DEFAULT_URL

        url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
        engine = create_engine(url)
        with engine.connect() as conn:
            pg = str(conn.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
    except Exception as exc:
        pg = f"unknown ({type(exc).__name__})"
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return "\n".join(
        [
            f"- CPU: {_first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores "
            "(shared with other work; figures are noisy, ratios are measured in the same run)",
            f"- memory: {memory}",
            f"- OS: {platform.platform()}",
            f"- Python {platform.python_version()}, PostgreSQL {pg} on 127.0.0.1",
            f"- load average when the run ended: {load}",
        ]
    )


def write_docs(report: Report, seconds: float, args: argparse.Namespace) -> None:
    """Write docs/benchmarks.md: machine, date, the table, the details."""
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); rerun it to refresh every figure. "
        "Medians of repeated runs on PostgreSQL (database `fgf_bench`, created when missing "
        "and wiped by each benchmark). Each ratio compares two figures measured in the same "
        "run. docs/reliability.md covers the load and fault runs. The suite runs every "
        "benchmark's world and one small measurement (tests/integration/test_bench_worlds.py), "
        "so that a change of the schema cannot break `make bench` unnoticed again: the move of "
        "departments onto units (issue 13) had broken the bulk, queue, reminder and load "
        "worlds, which fill their tables in SQL.",
        "",
        f"Run of {today}, {seconds / 60:.1f} minutes, `--repeat {args.repeat}`.",
        "",
        "## Machine",
        "",
        machine(),
        "",
        "## Figures",
        "",
        table(report.rows),
        "",
    ]
    record = RESULTS / "upload-1024mb.json"
    if record.exists():
        r = json.loads(record.read_text())
        parts += [
            "## Upload of 1 GB",
            "",
            "The default run uploads 256 MiB; the 1 GiB figure is long and was recorded by "
            "`python -m bench upload --upload-mb 1024 --write` "
            f"on {r['date']} (median of {r['repeat']}):",
            "",
            "| path | MB/s | ratio | peak RSS growth |",
            "|---|---|---|---|",
            f"| minio put_object | {r['direct_mb_s']:.1f} | 1.00 | "
            f"{r['direct_peak_rss_mb']:.0f} MB |",
            f"| ingest_upload → S3Store | {r['ingest_mb_s']:.1f} | {r['ratio']:.2f} | "
            f"{r['ingest_peak_rss_mb']:.0f} MB |",
        ]
        if "direct_mb_s_radosgw" in r:
            parts += [
                f"| radosgw: minio put_object | {r['direct_mb_s_radosgw']:.1f} | 1.00 | "
                f"{r['direct_peak_rss_mb_radosgw']:.0f} MB |",
                f"| radosgw: ingest_upload → S3Store | {r['ingest_mb_s_radosgw']:.1f} | "
                f"{r['ratio_radosgw']:.2f} | {r['ingest_peak_rss_mb_radosgw']:.0f} MB |",
            ]
        parts += [
            "",
            "moto (in a child process) keeps objects in memory and is much slower than a real "
            "server: its ratio and memory column are the point, not MB/s. The radosgw rows "
            "(present when scripts/ceph-s3.sh's gateway was up) are a real S3 server on the "
            "same machine. Memory stays flat whatever the size: the upload is spooled to disk "
            "and sent in 8 MiB parts.",
            "",
        ]
    for title, text in report.details:
        parts += [f"## {title}", "", text, ""]
    old = DOCS.read_text() if DOCS.exists() else ""
    notes = old[old.index(NOTES_MARK) :] if NOTES_MARK in old else NOTES_MARK + "\n"
    DOCS.write_text("\n".join(parts) + "\n" + notes)


def main(argv: list[str]) -> int:
    """Run the selected benchmarks and print one table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run ({', '.join(NAMES)})")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queue-repeat", type=int, default=30)
    parser.add_argument(
        "--queue-sizes", default="1000,10000,100000", type=lambda v: sorted(map(int, v.split(",")))
    )
    parser.add_argument("--upload-mb", type=int, default=256)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--write",
        action="store_true",
        help="write docs/benchmarks.md (default when running all benchmarks)",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RUNNERS]
    if unknown:
        parser.error(f"unknown benchmark: {', '.join(unknown)} (known: {', '.join(NAMES)})")
    names = args.names or NAMES
    args.write = args.write or not args.names
    report = Report()
    started = time.perf_counter()
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        RUNNERS[name](args, report)
    seconds = time.perf_counter() - started
    print(table(report.rows))
    if not args.names or set(names) == set(NAMES):
        write_docs(report, seconds, args)
        print(f"\n(written to {DOCS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
