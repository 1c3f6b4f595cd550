"""Beyond one machine: xdist gateways and a shared Hypothesis example database.

See docs/scaling.md. Remote hosts are stood in for by local ``popen`` gateways
(each in its own folder, with the sources rsynced there as xdist does for ssh
hosts); the redis test starts a real ``redis-server`` on 127.0.0.1 and is
skipped, with the reason, where the server is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance.catalogue import get_spec
from conformance.profiles import open_database, redact_url
from conformance.runner import run_property
from conformance.select import resolve_targets

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())
LOGGED = "tests.hostile.targets:wrong_for_large_logits_logged"


def _cli(*args: str, env_extra: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _report(report_dir: Path) -> dict[str, Any]:
    data = json.loads((report_dir / "conformance.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return data


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _found_then_replayed(tmp_path: Path, db: str, *, first_run_args: tuple[str, ...] = ()) -> None:
    """Run 1 (ci) finds and saves a counterexample; run 2 (dev, another seed) tries it first."""
    common = ("--target", LOGGED, "--spec", "sigmoid_bce", "-k", "agrees_with_numpy", "--hypothesis-db", db)
    log1, log2 = tmp_path / "calls1.jsonl", tmp_path / "calls2.jsonl"
    res1 = _cli(*common, "--profile", "ci", "--report-dir", str(tmp_path / "r1"), *first_run_args,
                env_extra={"CONFORMANCE_CALL_LOG": str(log1)})
    assert res1.returncode == 1, res1.stdout[-3000:] + res1.stderr[-2000:]
    (o1,) = _report(tmp_path / "r1")["outcomes"]
    assert o1["status"] == "failed" and o1["counterexample"]
    # Hypothesis ends a failing run by replaying the shrunk counterexample.
    shrunk = _calls(log1)[-1]
    assert any(abs(v) > 10 for v in (shrunk["logits"] if isinstance(shrunk["logits"], list) else [shrunk["logits"]]))

    res2 = _cli(*common, "--profile", "dev", "--seed", "987654", "--report-dir", str(tmp_path / "r2"),
                env_extra={"CONFORMANCE_CALL_LOG": str(log2)})
    assert res2.returncode == 1, res2.stdout[-3000:]
    data2 = _report(tmp_path / "r2")
    (o2,) = data2["outcomes"]
    assert data2["options"]["hypothesis_db"] == (redact_url(db) if "://" in db else str(Path(db).resolve()))
    # The first example of run 2 is a saved failing one (|logits| > 10), not generation's simplest
    # (the last logged call of run 1 may be a diagnosis probe, run after the shrink).
    first = _calls(log2)[0]["logits"]
    assert any(abs(v) > 10 for v in (first if isinstance(first, list) else [first])), \
        "the saved counterexample was not the first example of the second run"
    assert o2["status"] == "failed" and o2["counterexample"] == o1["counterexample"]


def test_directory_database_replays_a_counterexample_found_by_another_run_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "hypothesis-db"
    # Run 1 on two xdist workers: whichever found it saved it for every later process.
    _found_then_replayed(tmp_path, str(db), first_run_args=("-n", "2"))
    assert any(p.is_file() for p in db.rglob("*")), "the database folder holds no saved example"
    # The control: the same dev seed without the database starts from the simplest example.
    log = tmp_path / "control.jsonl"
    monkeypatch.setenv("CONFORMANCE_CALL_LOG", str(log))
    (t,) = resolve_targets([LOGGED], ["sigmoid_bce"])
    out = run_property(get_spec("sigmoid_bce").properties["agrees_with_numpy"], t, profile="dev", seed=987654, database=None)
    assert out.status == "failed"
    assert _calls(log)[0] != _calls(tmp_path / "calls2.jsonl")[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); the redis database is untested here")
    pytest.importorskip("redis", reason="the redis client is not installed (pip install redis)")
    import redis

    port = _free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None:
                    pytest.fail(f"redis-server exited with {proc.returncode} before accepting connections")
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not accept connections within 10 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_redis_database_replays_a_counterexample_found_by_another_run_first(tmp_path: Path, redis_url: str) -> None:
    _found_then_replayed(tmp_path, redis_url)
    import redis

    keys = redis.Redis.from_url(redis_url).keys("hypothesis-example:*")
    assert keys, "nothing was saved in redis"


def test_bad_database_locations_are_usage_errors_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--hypothesis-db 'http://example.invalid/db': the URL scheme must be redis"):
        open_database("http://example.invalid/db")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ValueError, match=r"--hypothesis-db .* exists and is not a directory"):
        open_database(str(not_a_dir))
    assert redact_url("redis://:secret@127.0.0.1:1/0") == "redis://:***@127.0.0.1:1/0"
    # Nothing listens on a port we just freed: the run stops at start-up with the reason.
    res = _cli("--spec", "sigmoid_bce", "-k", "agrees_with_numpy", "--report-dir", str(tmp_path / "r"),
               "--hypothesis-db", f"redis://:secret@127.0.0.1:{_free_port()}/0")
    assert res.returncode == 4, res.stdout[-2000:] + res.stderr[-2000:]
    assert "cannot reach the redis server" in res.stderr and "secret" not in res.stderr


def test_two_gateways_in_their_own_folders_run_one_session_with_a_shared_database(tmp_path: Path) -> None:
    # Two "hosts": popen gateways, each started in its own folder as an ssh gateway
    # would be; each imports the suite from its installation (--pyargs, chosen by the
    # CLI when --tx is given) and the controller gathers both hosts' outcomes.
    hosts = [tmp_path / "host-a", tmp_path / "host-b"]
    for h in hosts:
        h.mkdir()
    db = tmp_path / "db"
    res = _cli("--target", "tests.hostile.targets:good", "--spec", "sigmoid_bce",
               "-k", "agrees_with_numpy or inputs_not_modified or deterministic or label_flip",
               f"--report-dir={tmp_path / 'r'}", f"--hypothesis-db={db}",
               "--", *(f"--tx=popen//chdir={h}" for h in hosts), "--dist=load", "-vv")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = _report(tmp_path / "r")
    props = sorted(o["property"] for o in data["outcomes"])
    assert props == ["agrees_with_numpy", "deterministic", "inputs_not_modified", "label_flip_symmetry"]
    assert all(o["status"] == "passed" for o in data["outcomes"])
    assert data["options"]["hypothesis_db"] == str(db.resolve())
    ran_on = {w for w in ("[gw0]", "[gw1]") if f"{w} [" in res.stdout}
    assert ran_on == {"[gw0]", "[gw1]"}, res.stdout[-3000:]
