"""Many people at once (issue 12): N concurrent sessions against ``streamlit run app.py``.

Starts ``python -m streamlit run app.py --server.headless true`` on a free port and opens N sessions at
the same moment with a lightweight client of Streamlit's own protocol: a websocket to ``/_stcore/stream``
that sends ``BackMsg.rerun_script`` and reads ``ForwardMsg``s (protobufs from ``streamlit.proto``), as the
browser's frontend does. No browser runs, so the figures are the server's alone (a browser would add its
own JavaScript and rendering time on the client machine, not on the server).

For each session:

* **ready**: from opening the websocket to the Calculator's first successful ``script_finished``, on
  servers that have had one visitor (``--cold``: just started, where every first run that overlaps the
  server's first one reruns itself once to leave Streamlit's legacy pages mode);
* **rerun**: from sending a changed users and answer-length number box (a new scenario that still fits,
  so new physics, charts and cost: not a cache hit of another session) to its ``script_finished``; all
  sessions rerun at the same moment;
* **errors**: sessions that failed, timed out, or whose page showed an exception box.

Also printed: the server's resident memory (RSS) before the sessions, at its peak, and after.

Run from the repository root: ``python benchmarks/app_load.py`` (``--sessions 50``, ``--timeout 120``,
``--replicas 2`` to start two servers and spread the sessions over them, as a load balancer would).
Targets (issue 12, 2-core machine, 50 sessions): all ready, p95 ready <= 5 s, p95 rerun <= 2 s, no
error, server memory < 1 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
USERS_KEY = "concurrency"  # the sidebar's users number box (its widget key)
ANSWER_KEY = "output_tokens"  # the sidebar's answer-length number box


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc) [B]; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc) [s]; 0 when unreadable. The
    server's CPU seconds per session do not depend on what else the machine runs, unlike wall times."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class RssSampler(threading.Thread):
    """The peak RSS of `pid`, sampled every 100 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _rss_bytes(self.pid))
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def start_server(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not answer its health check within 60 s")


def _track_widgets(msg: ForwardMsg, widgets: dict[str, WidgetState]) -> None:
    """Keep, per widget id, the state a browser would send back for it on the next rerun: the value the
    server last set, else what it first showed (number boxes, select sliders, select boxes, toggles, keyed
    tab containers; buttons send nothing). A rerun that left a widget out would reset it: the app's slider
    callbacks would then move the scenario to the slider's first step."""
    if msg.WhichOneof("type") != "delta":
        return
    if msg.delta.WhichOneof("type") == "add_block":
        block = msg.delta.add_block
        if block.WhichOneof("type") == "tab_container" and block.tab_container.id:
            widgets[block.tab_container.id] = WidgetState(id=block.tab_container.id,
                                                          string_value=block.tab_container.default_tab_label)
        elif block.WhichOneof("type") == "tab":  # a container's first tab is open by default
            for state in widgets.values():
                if state.WhichOneof("value") == "string_value" and not state.string_value and \
                        state.id.endswith("_tab"):
                    state.string_value = block.tab.label
        return
    if msg.delta.WhichOneof("type") != "new_element":
        return
    el = msg.delta.new_element
    kind = el.WhichOneof("type")
    w = getattr(el, kind) if kind in ("number_input", "slider", "selectbox", "checkbox") else None
    if w is None or not w.id:
        return
    if w.id in widgets and not w.set_value:
        return  # the browser keeps what it shows; the server sends a value only when it sets one
    state = WidgetState(id=w.id)
    if kind == "number_input":
        field = "value" if w.set_value else "default"
        if w.HasField(field):  # an empty box (None) sends no value
            if w.data_type == NumberInput.INT:
                state.int_value = int(getattr(w, field))
            else:
                state.double_value = getattr(w, field)
    elif kind == "slider":
        if w.options:  # a select slider: its state is the chosen options' labels
            labels = list(w.raw_value) if w.set_value and w.raw_value else [w.options[int(i)] for i in w.default]
            state.string_array_value.data.extend(labels)
        else:
            state.double_array_value.data.extend(w.value if w.set_value else w.default)
    elif kind == "selectbox":
        if w.set_value and w.HasField("raw_value"):
            state.string_value = w.raw_value
        elif w.HasField("default") and w.options:
            state.string_value = w.options[w.default]
        else:
            return
    else:  # checkbox / toggle
        state.bool_value = w.value if w.set_value else w.default
    widgets[w.id] = state


def _has_exception(msg: ForwardMsg) -> bool:
    return (msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element"
            and msg.delta.new_element.WhichOneof("type") == "exception")


class Session:
    """One person: a websocket speaking Streamlit's protocol."""

    def __init__(self, url: str, index: int):
        self.url, self.index = url, index
        self.ws = None
        # the state of every widget on the page, sent back with each rerun as a browser does
        self.widgets: dict[str, WidgetState] = {}
        self.exceptions = 0

    async def _run_until_finished(self, timeout: float) -> None:
        """Read ForwardMsgs until a run finishes successfully (an early finish for a rerun goes on)."""
        async def read() -> None:
            while True:
                msg = ForwardMsg()
                msg.ParseFromString(await self.ws.recv())
                _track_widgets(msg, self.widgets)
                self.exceptions += _has_exception(msg)
                if msg.WhichOneof("type") == "script_finished":
                    if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                        return
                    if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                        raise RuntimeError("the script did not compile")
        await asyncio.wait_for(read(), timeout)

    async def _send_rerun(self, widget_states=()) -> None:
        back = BackMsg()
        back.rerun_script.query_string = ""
        back.rerun_script.page_script_hash = ""
        for ws in widget_states:
            back.rerun_script.widget_states.widgets.append(ws)
        await self.ws.send(back.SerializeToString())

    async def open(self, timeout: float) -> float:
        """Seconds from connecting to a ready Calculator."""
        t0 = time.perf_counter()
        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=None,
                                           open_timeout=timeout, ping_interval=None)
        await self._send_rerun()
        await self._run_until_finished(timeout - (time.perf_counter() - t0))
        return time.perf_counter() - t0

    async def change_request(self, users: int, output_tokens: int, timeout: float) -> float:
        """Seconds for the rerun after typing `users` into the users box and `output_tokens` into the
        answer-length box (both at once, as one rerun)."""
        states = {wid: WidgetState.FromString(st.SerializeToString()) for wid, st in self.widgets.items()}
        for key, value in ((USERS_KEY, users), (ANSWER_KEY, output_tokens)):
            wid = next((i for i in states if i.endswith(f"-{key}")), None)
            if wid is None:
                raise RuntimeError(f"no {key} number box on the page")
            if states[wid].WhichOneof("value") == "int_value":
                states[wid].int_value = value
            else:
                states[wid].double_value = float(value)
        states = list(states.values())
        t0 = time.perf_counter()
        await self._send_rerun(states)
        await self._run_until_finished(timeout)
        return time.perf_counter() - t0

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _cpu_all(pids: list[int]) -> float:
    return sum(_cpu_s(pid) for pid in pids)


async def run(ports: list[int], n: int, timeout: float, pids: list[int], warm: bool = True) -> dict:
    """Open `n` sessions spread round-robin over the servers on `ports` (a load balancer with sticky
    sessions), then rerun them all at once; `warm`: one visitor on each server before them."""
    sessions = [Session(f"ws://127.0.0.1:{ports[i % len(ports)]}/_stcore/stream", i) for i in range(n)]
    errors: list[str] = []
    if warm:
        # One visitor first on each server, as on a server that is already up: the first run after a
        # start leaves Streamlit's legacy pages mode, and sessions whose first run overlaps it run twice.
        for port in ports:
            visitor = Session(f"ws://127.0.0.1:{port}/_stcore/stream", -1)
            await visitor.open(timeout)
            await visitor.close()

    async def open_one(s: Session):
        try:
            return await s.open(timeout)
        except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
            errors.append(f"session {s.index} open: {type(exc).__name__}: {exc}"[:200])
            return None

    t0, cpu0 = time.perf_counter(), _cpu_all(pids)
    ready = [r for r in await asyncio.gather(*(open_one(s) for s in sessions)) if r is not None]
    all_ready_s, ready_cpu_s = time.perf_counter() - t0, _cpu_all(pids) - cpu0

    async def rerun_one(s: Session):
        if s.ws is None or not s.widgets:
            return None
        try:
            # each session its own new scenario that fits the default deployment (2-17 users, the default
            # 8x H200 holds 22 at the default context), so every rerun computes speed, charts and cost
            return await s.change_request(2 + s.index % 16, 1000 + s.index, timeout)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"session {s.index} rerun: {type(exc).__name__}: {exc}"[:200])
            return None

    cpu1 = _cpu_all(pids)
    reruns = [r for r in await asyncio.gather(*(rerun_one(s) for s in sessions)) if r is not None]
    rerun_cpu_s = _cpu_all(pids) - cpu1
    exceptions = sum(s.exceptions for s in sessions)
    await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return {"ready": ready, "reruns": reruns, "errors": errors, "exceptions": exceptions, "all_ready_s": all_ready_s,
            "ready_cpu_s": ready_cpu_s, "rerun_cpu_s": rerun_cpu_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", "-n", type=int, default=50, help="concurrent sessions (default 50)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a session may wait (default 120)")
    ap.add_argument("--replicas", type=int, default=1,
                    help="servers to start, sessions spread round-robin over them as a load balancer with sticky "
                         "sessions would (default 1)")
    ap.add_argument("--cold", action="store_true",
                    help="open the sessions on servers that have served no one yet (each session's first run then "
                         "also leaves Streamlit's legacy pages mode: it runs twice)")
    a = ap.parse_args(argv)
    ports = [_free_port() for _ in range(a.replicas)]
    servers = [start_server(port) for port in ports]
    pids = [srv.pid for srv in servers]
    try:
        idle = sum(_rss_bytes(pid) for pid in pids)
        samplers = [RssSampler(pid) for pid in pids]
        for sampler in samplers:
            sampler.start()
        r = asyncio.run(run(ports, a.sessions, a.timeout, pids, warm=not a.cold))
        peak = sum(sampler.stop() for sampler in samplers)
        after = sum(_rss_bytes(pid) for pid in pids)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    mib = 1024 ** 2
    ready, reruns = r["ready"], r["reruns"]
    print(f"k2calc app load: {a.sessions} concurrent sessions (Streamlit protocol client, no browser), "
          f"{a.replicas} server(s){' just started' if a.cold else ' after one visitor each'}, {os.cpu_count()} CPU(s)")
    print(f"  ready:  {len(ready)}/{a.sessions} sessions, p50 {_pct(ready, 0.5):.2f} s, p95 {_pct(ready, 0.95):.2f} s, "
          f"max {max(ready, default=float('nan')):.2f} s (all ready after {r['all_ready_s']:.2f} s)")
    print(f"  rerun:  {len(reruns)}/{a.sessions} sessions (users and answer length changed at once), p50 {_pct(reruns, 0.5):.2f} s, "
          f"p95 {_pct(reruns, 0.95):.2f} s, max {max(reruns, default=float('nan')):.2f} s")
    print(f"  server CPU: {r['ready_cpu_s'] / max(1, len(ready)) * 1e3:.0f} ms per session to ready, "
          f"{r['rerun_cpu_s'] / max(1, len(reruns)) * 1e3:.0f} ms per rerun (user + system time of the server "
          f"processes; one server's Python threads share one interpreter lock, so N sessions at once on one server "
          f"need about N x this)")
    print(f"  errors: {len(r['errors'])} session error(s), {r['exceptions']} exception box(es)")
    for e in r["errors"][:5]:
        print(f"    {e}")
    print(f"  server RSS (all servers): {idle / mib:.0f} MiB idle, {peak / mib:.0f} MiB peak, {after / mib:.0f} MiB after "
          f"(~{max(0, peak - idle) / mib / max(1, a.sessions):.1f} MiB per session)")
    return 0 if not r["errors"] and not r["exceptions"] and len(ready) == a.sessions else 1


if __name__ == "__main__":
    sys.exit(main())
