"""optuna-dashboard, run against a search's storage, serves its trials over HTTP."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server

import pytest

from nasforge.strategies import STRATEGIES
from nasforge.strategies import open_storage
from nasforge.strategies import run_search
from nasforge.testing.contracts import _synthetic_problem


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # no request lines on stderr
        return


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def test_dashboard_serves_the_search_trials(tmp_path: Path) -> None:
    dashboard = pytest.importorskip("optuna_dashboard")
    url = f"sqlite:///{tmp_path / 's.db'}"
    space, objs = _synthetic_problem()
    res = run_search(STRATEGIES.get("random")(space, objs, seed=0, batch_size=3), budget=6,
                     storage=url, study_name="watched")
    storage, _ = open_storage(url)
    server = make_server("127.0.0.1", 0, dashboard.wsgi(storage), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        studies = _get(f"{base}/api/studies")
        assert isinstance(studies, dict)
        (study,) = [s for s in studies["study_summaries"] if s["study_name"] == "watched"]
        detail = _get(f"{base}/api/studies/{study['study_id']}?after=0")
        assert isinstance(detail, dict)
        trials = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert len(trials) == res.n_evaluated == 6
        served = {a["key"]: a["value"] for a in trials[0]["user_attrs"]}
        assert served["arch_id"] == res.archs[0].arch_id
        assert len(trials[0]["values"]) == len(objs)
    finally:
        server.shutdown()
        server.server_close()
