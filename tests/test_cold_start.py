"""``nasoa recommend``'s cold start (issue 20, defect 9): import only what the path needs.

A successful recommendation needs torch (the reference network's features), torchvision (that
network is torchvision's ResNet) and POT (the EMD); its argument, budget and data errors need none
of them and used to wait seconds for torch. Each check runs in a fresh interpreter, since this
test session has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "torchvision", "ot", "sklearn", "pandas", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_recommend_path_modules_import_without_heavy_libraries():
    assert _loaded_after("""
        import nasoa_lib.cli, nasoa_lib.data, nasoa_lib.generator.commands, nasoa_lib.generator.service
        from nasoa_lib.generator import GeneratorConfig, Recommendation, parse_budget
    """) == []


def test_recommend_budget_and_data_errors_load_no_heavy_library(tmp_path):
    assert _loaded_after(f"""
        import contextlib, io
        from nasoa_lib.cli import main
        with contextlib.redirect_stderr(io.StringIO()):
            assert main(["recommend", "--profile", "smoke", "--data", {str(tmp_path)!r}, "--budget", "soon"]) != 0
            assert main(["recommend", "--profile", "smoke", "--data", {str(tmp_path / "missing")!r},
                         "--budget", "30s"]) != 0
    """) == []
