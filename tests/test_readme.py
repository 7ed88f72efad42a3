"""Every Python snippet in the README runs as written (issue 17: the API snippet's ``explain``
raised for the winners of all three documented fits, and ``X_train`` was never defined)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, cli_env

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.slow
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.splitlines()[0][:40] for s in SNIPPETS])
def test_readme_snippet_runs_as_written(snippet, tmp_path):
    # on the session's Ray instance (conftest.cli_env): the snippets' searches start none of their own
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                            env=cli_env())
    assert result.returncode == 0, result.stderr[-3000:]
