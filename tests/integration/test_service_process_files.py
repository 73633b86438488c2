"""The test harness's service runner leaves no file behind, however the service ends."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.service import ServiceProcess

# Answers /healthz with 200 on the --host/--port the runner appends, and says so on stdout.
_HEALTHZ_SERVER = """
import http.server, sys
host, port = sys.argv[sys.argv.index("--host") + 1], int(sys.argv[sys.argv.index("--port") + 1])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
print("serving", flush=True)
http.server.HTTPServer((host, port), Handler).serve_forever()
"""


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_output_survives_stop_and_no_file_is_left(private_tmp: Path) -> None:
    service = ServiceProcess({}, argv=[sys.executable, "-c", _HEALTHZ_SERVER]).start()
    service.stop()
    assert "serving" in service.output()
    assert sorted(p.name for p in private_tmp.iterdir()) == []


def test_a_service_that_fails_to_start_leaves_no_file(private_tmp: Path) -> None:
    service = ServiceProcess({}, argv=[sys.executable, "-c", "print('bad setting'); exit(3)"])
    with pytest.raises(RuntimeError, match="bad setting"):
        service.start()
    assert sorted(p.name for p in private_tmp.iterdir()) == []
