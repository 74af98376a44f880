"""The `testbed` command as a user meets it: `topology check` on real and broken files gives
a summary or one precise error line, never a traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[2] / "topologies" / "zoo"   # CC-BY-4.0, see LICENSE
ROOT = Path(__file__).resolve().parents[2]


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", "topology", "check", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["fat_tree4.yaml", "leaf_spine.yaml", "small_wan.yaml"])
def test_shipped_topologies_check_with_a_summary(name):
    """Each shipped YAML topology passes the check and prints its summary."""
    r = _check(ROOT / "topologies" / name)
    assert r.returncode == 0, r.stderr
    assert "switches" in r.stdout and "diameter" in r.stdout


@pytest.mark.skipif(not ZOO.is_dir(), reason="no Topology Zoo files in topologies/zoo")
@pytest.mark.parametrize("path", sorted(ZOO.glob("*.graphml")) if ZOO.is_dir() else [],
                         ids=lambda p: p.stem)
def test_zoo_files_check_without_traceback(path):
    """Real Topology Zoo files give a summary (quirks listed) or a one-line error."""
    r = _check(path)
    assert "Traceback" not in r.stderr
    assert (r.returncode == 0 and "switches" in r.stdout) or (
        r.returncode == 2 and r.stderr.startswith("testbed: error:"))


@pytest.mark.parametrize("content,suffix,words", [
    ("<graphml><graph><node id='a'/>", ".graphml", "graphml"),
    ("\x00\x01binary", ".gml", "gml"),
    ("name: x\nbuilder: {type: fat_tree, k: 3}\n", ".yaml", "k"),
    ("name: [unclosed\n", ".yaml", "line"),
    ("", ".graphml", ""),
    ("graph [ node [ id 0 ] ]", ".txt", "unsupported file type"),
])
def test_broken_files_give_one_precise_error(tmp_path, content, suffix, words):
    """Malformed files of every kind end in `testbed: error: FILE: ...`, exit 2."""
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    r = _check(f)
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("testbed: error:") and f.name in r.stderr
    assert words.lower() in r.stderr.lower()
