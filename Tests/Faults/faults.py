"""Faults injected against the real `bulwark` binary: SIGTERM and kill -9 in the middle of a phishing send, a cancel
mid-send, a server that refuses the connection, and a second process on the same database. A slow SMTP sink
(smtp_sink.py) records every message it accepts; the checks compare that record with what each scenario allows.

    python3 faults.py BINARY [--people N]

Prints one line per check and 'N passed, N failed'; exits 1 on any failure."""
import collections
import json
import os
import signal
import sqlite3
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BINARY = os.path.abspath(sys.argv[1])
PEOPLE = int(sys.argv[sys.argv.index("--people") + 1]) if "--people" in sys.argv else 400
HERE = os.path.dirname(os.path.abspath(__file__))
CONNECTIONS = 32  # PhishingSender.connections: SMTP connections a campaign sends over at once
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, step=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


class Sink:
    def __init__(self, work, delay=0.05, refuse=False, refuse_auth=False):
        self.port = free_port()
        self.log = os.path.join(work, f"sink-{self.port}.jsonl")
        open(self.log, "w").close()
        args = [sys.executable, os.path.join(HERE, "smtp_sink.py"), str(self.port), self.log, str(delay)]
        if refuse:
            args.append("--refuse")
        if refuse_auth:
            args.append("--refuse-auth")
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._listening(), 10)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def recipients(self):
        with open(self.log) as f:
            return [json.loads(line)["to"] for line in f if line.strip()]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


class Server:
    def __init__(self, work, port, database_url=None):
        self.work, self.port, self.database_url = work, port, database_url
        self.process = None
        self.log_path = os.path.join(work, f"server-{port}.log")

    def start(self):
        env = dict(os.environ)
        env.update({
            "BULWARK_PORT": str(self.port), "BULWARK_ADMIN_EMAIL": "admin@faults.test", "BULWARK_ADMIN_PASSWORD": "faults-pass-1",
            "BULWARK_OUTBOUND_ALLOW": "127.0.0.1", "BULWARK_RATE_LIMIT_WRITE": "100000/60", "BULWARK_RATE_LIMIT_READ": "100000/60",
            "BULWARK_RATE_LIMIT_UPLOAD": "100000/60", "BULWARK_RATE_LIMIT_AUTH": "100000/60", "BULWARK_JOB_LEASE_SECONDS": "10",
            "LOG_LEVEL": "notice",
        })
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        log = open(self.log_path, "a")
        self.process = subprocess.Popen([BINARY, "serve", "--env", "development"], cwd=self.work, env=env,
                                        stdout=log, stderr=subprocess.STDOUT)
        ok = wait_for(lambda: self.healthy(), 60)
        if not ok:
            raise RuntimeError(f"server on {self.port} did not start: {open(self.log_path).read()[-2000:]}")

    def healthy(self):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1).status == 200
        except Exception:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None

    def log(self):
        return open(self.log_path).read()


class API:
    def __init__(self, port, client=None):
        self.base = f"http://127.0.0.1:{port}"
        self.client = client
        self.token = self.call("POST", "/api/auth/login", {"email": "admin@faults.test", "password": "faults-pass-1"})["data"]["token"]

    def call(self, method, path, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        if getattr(self, "client", None):
            headers["X-Client-Id"] = self.client
        request = urllib.request.Request(self.base + path, method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.code} {error.read()[:500]}")


def people_csv(count, domain):
    rows = ["first_name,last_name,email"] + [f"Person,{i},person{i}@{domain}" for i in range(count)]
    return ("\n".join(rows) + "\n").encode()


def prepare(api, sink_port, domain, credentials=None):
    """Imports the people, makes a sending profile to the sink and a campaign for everyone; returns (campaign, profile)."""
    api.call("POST", "/api/v1/users/import", raw=people_csv(PEOPLE, domain), content_type="text/csv")
    settings = {"name": "Sink", "host": "127.0.0.1", "port": sink_port, "security": "none", "envelope_from": "sim@faults.test",
                "throttle_per_minute": 1000000}
    if credentials:
        settings.update(username=credentials[0], password=credentials[1])
    profile = api.call("POST", "/api/v1/phishing/sending-profiles", settings)["data"]["id"]
    template = api.call("GET", "/api/v1/phishing/templates?per_page=1")["data"][0]["id"]
    campaign = api.call("POST", "/api/v1/phishing/campaigns", {
        "name": f"Faults {domain}", "template_ids": [template], "sending_profile_id": profile,
        "tracking_url": "https://phish.faults.test"})["data"]["id"]
    return campaign, profile


def launch(api, campaign):
    api.call("POST", f"/api/v1/phishing/campaigns/{campaign}/send")
    return api.call("GET", f"/api/v1/phishing/campaigns/{campaign}")["data"]["progress"]["total"]


def scenario_stop(sig, name, allowed_duplicates):
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    sink = Sink(work)
    server = Server(work, free_port())
    server.start()
    api = API(server.port)
    campaign, _ = prepare(api, sink.port, f"{name}.test")
    total = launch(api, campaign)
    reached = wait_for(lambda: len(sink.recipients()) >= total // 4, 120)
    check(f"{name}: sending started ({len(sink.recipients())} of {total} delivered)", bool(reached))
    code = server.stop(sig)
    at_stop = len(sink.recipients())
    if sig == signal.SIGTERM:
        check(f"{name}: the server exits cleanly on SIGTERM", code == 0, f"exit status {code}")
    check(f"{name}: it stopped mid-send ({at_stop} of {total})", at_stop < total)
    if sig == signal.SIGTERM:
        # A clean stop leaves nothing claimed: no message marked as being sent, no job marked as running, and no
        # attempt charged to a message that was handed back.
        db = sqlite3.connect(os.path.join(server.work, "bulwark.sqlite"))
        sending = db.execute("SELECT count(*) FROM phishing_simulations WHERE send_status = 'sending'").fetchone()[0]
        running = db.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]
        charged = db.execute("SELECT count(*) FROM phishing_simulations WHERE send_status = 'queued' AND attempts > 0").fetchone()[0]
        db.close()
        check(f"{name}: nothing left claimed after SIGTERM ({sending} sending, {running} running, {charged} charged)",
              sending == 0 and running == 0 and charged == 0)
    server.start()
    wait_for(lambda: len(sink.recipients()) >= total, 180)
    time.sleep(3)
    recipients = sink.recipients()
    counts = collections.Counter(recipients)
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    check(f"{name}: after the restart everyone got the message ({len(counts)} of {total})", len(counts) == total)
    check(f"{name}: duplicates {duplicates} <= {allowed_duplicates}", duplicates <= allowed_duplicates)
    progress = api.call("GET", f"/api/v1/phishing/campaigns/{campaign}")["data"]["progress"] if server.healthy() else None
    check(f"{name}: the campaign counts every message once", progress is not None and progress["sent"] == total, str(progress))
    server.stop()
    for line in server.log().splitlines():
        if "Cannot schedule tasks" in line:
            check(f"{name}: nothing scheduled on a stopped event loop", False, line)
            break
    sink.stop()


def scenario_cancel():
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    sink = Sink(work)
    server = Server(work, free_port())
    server.start()
    api = API(server.port)
    campaign, _ = prepare(api, sink.port, "cancel.test")
    total = launch(api, campaign)
    wait_for(lambda: len(sink.recipients()) >= total // 10, 120)
    api.call("DELETE", f"/api/v1/phishing/campaigns/{campaign}")
    at_cancel = len(sink.recipients())
    time.sleep(4)
    after = len(sink.recipients())
    check(f"cancel: at most one message per connection after the cancel ({after - at_cancel} more)", after - at_cancel <= CONNECTIONS)
    progress = api.call("GET", f"/api/v1/phishing/campaigns/{campaign}")["data"]["progress"]
    check("cancel: the rest are cancelled", progress["cancelled"] == total - after and progress["sent"] == after, str(progress))
    server.stop()
    sink.stop()


def scenario_refused_greeting():
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    refusing = Sink(work, refuse=True)
    good = Sink(work)
    server = Server(work, free_port())
    server.start()
    api = API(server.port)
    campaign, profile = prepare(api, refusing.port, "refused.test")
    total = launch(api, campaign)
    time.sleep(8)
    progress = api.call("GET", f"/api/v1/phishing/campaigns/{campaign}")["data"]["progress"]
    check("refused greeting: nobody is failed by a server that refuses the connection", progress["errors"] == 0, str(progress))
    status = api.call("GET", f"/api/v1/phishing/sending-profiles/{profile}")["data"]
    check("refused greeting: the profile is paused with the reason", status["status"] == "paused" and "554" in (status["pause_reason"] or ""),
          str(status))
    api.call("PUT", f"/api/v1/phishing/sending-profiles/{profile}", {"port": good.port})
    wait_for(lambda: len(set(good.recipients())) >= total, 120)
    check("refused greeting: once the server works, everyone gets the message", len(set(good.recipients())) == total)
    server.stop()
    refusing.stop()
    good.stop()


def scenario_second_process_sqlite():
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    server = Server(work, free_port())
    server.start()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    result = subprocess.run([BINARY, "run-jobs", "--env", "development"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=60)
    check("second process (SQLite): run-jobs beside a server refuses to run the queue",
          result.returncode != 0 and "runs the jobs" in result.stdout + result.stderr, result.stdout + result.stderr)
    server.stop()


def fresh_database(database_url, database):
    """An empty database beside DATABASE_URL's (which holds what the test suite left)."""
    subprocess.run(["psql", database_url, "-qc", f"DROP DATABASE IF EXISTS {database}"], check=True, capture_output=True)
    subprocess.run(["psql", database_url, "-qc", f"CREATE DATABASE {database}"], check=True, capture_output=True)
    return database_url.rsplit("/", 1)[0] + "/" + database


def scenario_two_servers_postgres(database_url):
    url = fresh_database(database_url, "bulwark_faults")
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    sink = Sink(work)
    first, second = Server(work, free_port(), url), Server(work, free_port(), url)
    first.start()
    second.start()
    api = API(first.port)
    campaign, _ = prepare(api, sink.port, "twoservers.test")
    total = launch(api, campaign)
    wait_for(lambda: len(sink.recipients()) >= total, 180)
    time.sleep(3)
    counts = collections.Counter(sink.recipients())
    check(f"two servers (PostgreSQL): everyone once ({len(counts)} of {total}, {sum(counts.values())} messages)",
          len(counts) == total and sum(counts.values()) == total)
    first.stop()
    second.stop()
    sink.stop()


def scenario_refused_auth_beside_working():
    """One tenant's profile points at a server that refuses AUTH, another tenant's at a working sink."""
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    refusing = Sink(work, refuse_auth=True)
    good = Sink(work)
    server = Server(work, free_port())
    server.start()
    api = API(server.port)
    company = api.call("GET", "/api/v3/companies")["data"][0]["id"]
    other = api.call("POST", f"/api/v3/companies/{company}/clients", {"name": "Other tenant"})["data"]["id"]
    other_api = API(server.port, client=other)
    bad_campaign, bad_profile = prepare(api, refusing.port, "badauth.test", credentials=("user", "wrong"))
    good_campaign, _ = prepare(other_api, good.port, "goodauth.test")
    launch(api, bad_campaign)
    started = time.time()
    total = launch(other_api, good_campaign)
    wait_for(lambda: len(set(good.recipients())) >= total, 120)
    elapsed = time.time() - started
    # Alone, the slow sink takes about total x 0.05 s / 4 connections; allow generous slack for a loaded CI machine.
    check(f"refused AUTH: the other tenant's campaign completes ({len(set(good.recipients()))} of {total} in {elapsed:.1f} s)",
          len(set(good.recipients())) == total and elapsed < 60)
    progress = api.call("GET", f"/api/v1/phishing/campaigns/{bad_campaign}")["data"]["progress"]
    status = api.call("GET", f"/api/v1/phishing/sending-profiles/{bad_profile}")["data"]
    check("refused AUTH: the broken tenant's campaign is paused, nobody failed",
          progress["errors"] == 0 and progress["sent"] == 0 and status["status"] == "paused", f"{progress} {status}")
    server.stop()
    refusing.stop()
    good.stop()


def scenario_tracking_burst_kill():
    """A burst of tracking opens with kill -9 in the middle: every answered event is stored."""
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    sink = Sink(work, delay=0)
    server = Server(work, free_port())
    server.start()
    api = API(server.port)
    campaign, _ = prepare(api, sink.port, "burst.test")
    total = launch(api, campaign)
    wait_for(lambda: len(sink.recipients()) >= total, 120)
    db = sqlite3.connect(os.path.join(work, "bulwark.sqlite"))
    tokens = [row[0] for row in db.execute("SELECT token FROM phishing_simulations")]
    db.close()
    answered = []
    lock = threading.Lock()

    def open_all(chunk):
        for token in chunk:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/phishing/track/open/{token}",
                                                 headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                    if response.status == 200:
                        with lock:
                            answered.append(token)
            except Exception:
                pass

    threads = [threading.Thread(target=open_all, args=(tokens[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= len(tokens) // 3, 60, step=0.01)
    server.stop(signal.SIGKILL)
    for thread in threads:
        thread.join()
    # Answered events may still be in the killed process's journal; the next process replays it before it serves.
    journal = os.path.join(work, "bulwark.sqlite.journal")
    left = [name for name in os.listdir(journal) if name.endswith(".journal")] if os.path.isdir(journal) else []
    server.start()
    replayed = [name for name in os.listdir(journal) if name.endswith(".journal")] if os.path.isdir(journal) else []
    server.stop()
    db = sqlite3.connect(os.path.join(work, "bulwark.sqlite"))
    stored = {row[0] for row in db.execute(
        "SELECT s.token FROM phishing_events e JOIN phishing_simulations s ON s.id = e.simulation_id WHERE e.kind = 'open'")}
    rows = db.execute("SELECT count(*) FROM phishing_events WHERE kind = 'open'").fetchone()[0]
    db.close()
    missing = [token for token in answered if token not in stored]
    check(f"tracking burst + kill -9: every answered open is stored after the restart ({len(answered)} answered, "
          f"{len(stored)} stored, {len(missing)} missing; {len(left)} journal files left by the killed process, "
          f"{len(replayed)} after the restart; {rows} rows)",
          not missing and 0 < len(answered) < len(tokens) and not replayed and rows == len(stored))
    sink.stop()


def scenario_postgres_restart(database_url):
    """PostgreSQL stopped and started under load: 503 while it is down, recovery without restarting Bulwark."""
    if subprocess.run(["which", "pg_ctlcluster"], capture_output=True).returncode != 0:
        return
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.split()
    if len(clusters) < 2:
        return
    version, cluster = clusters[0], clusters[1]
    work = tempfile.mkdtemp(prefix="bulwark-faults-")
    server = Server(work, free_port(), fresh_database(database_url, "bulwark_faults_restart"))
    server.start()
    api = API(server.port)
    codes = collections.Counter()
    stop_load = threading.Event()

    def load():
        while not stop_load.is_set():
            request = urllib.request.Request(f"http://127.0.0.1:{server.port}/api/v1/users?per_page=1",
                                             headers={"Authorization": f"Bearer {api.token}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    codes[response.status] += 1
            except urllib.error.HTTPError as error:
                codes[error.code] += 1
                if error.code == 503:
                    codes["retry-after"] += 1 if error.headers.get("Retry-After") else 0
            except Exception:
                codes["no answer"] += 1
            time.sleep(0.02)

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1)
    subprocess.run(["pg_ctlcluster", version, cluster, "stop", "-m", "fast"], check=True)
    time.sleep(4)
    down = dict(codes)
    subprocess.run(["pg_ctlcluster", version, cluster, "start"], check=True)
    recovered = wait_for(lambda: codes[200] > down.get(200, 0) + 5, 60)
    stop_load.set()
    thread.join()
    check(f"PostgreSQL restart: 503 with Retry-After while it is down ({dict(codes)})",
          down.get(503, 0) > 0 and down.get("retry-after", 0) == down.get(503, 0) and down.get(500, 0) == 0
          and down.get(401, 0) == 0)
    check("PostgreSQL restart: answers again without restarting Bulwark", bool(recovered) and server.healthy())
    server.stop()


ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None


def run(scenario, *args):
    """Runs a scenario unless `--only NAME` picks another (a part of its function name)."""
    if ONLY is None or ONLY in scenario.__name__:
        scenario(*args)


run(scenario_stop, signal.SIGTERM, "sigterm", 0)
run(scenario_stop, signal.SIGKILL, "kill-9", CONNECTIONS)
run(scenario_cancel)
run(scenario_refused_greeting)
run(scenario_second_process_sqlite)
run(scenario_refused_auth_beside_working)
run(scenario_tracking_burst_kill)
if os.environ.get("DATABASE_URL"):
    run(scenario_two_servers_postgres, os.environ["DATABASE_URL"])
    run(scenario_postgres_restart, os.environ["DATABASE_URL"])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
