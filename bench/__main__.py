"""`python -m bench`: run the benchmarks in turn (`make bench`).

Arguments after the name select benchmarks: transitions, notices, upload (default: all but
the 1 GB upload, which is long; ask for it by name).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = ["transitions", "notices"]


def main(argv: list[str]) -> int:
    """Run the named benchmarks (each script's own main)."""
    names = argv or DEFAULT
    for name in names:
        script = HERE / f"bench_{name}.py"
        if not script.exists():
            print(f"unknown benchmark: {name}", file=sys.stderr)
            return 2
        print(f"\n## {name}\n", flush=True)
        saved = sys.argv
        sys.argv = [str(script)]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                return int(exc.code) if isinstance(exc.code, int) else 1
        finally:
            sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
