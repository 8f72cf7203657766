#!/usr/bin/python3
"""cci-harden test bed stand-in, not Nomad.

The test bed cannot obtain Nomad (1.7 and later are not open source, and no registry here ships
it). This program stands in for the binary so that the install, the configuration, the service
and the rollout can be exercised. It runs no scheduler. As ``agent`` it answers the part of the
agent's HTTP API that ``cci-harden rollout`` uses (agent/self, the node, its eligibility, its
drain with a deadline, its allocations) on the address client.hcl gives, and reports the test
bed's build-like jobs (``testbed-job``) as batch allocations. Read as text by the test bed and
published inside a release zip; it is never imported.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = "cci-harden test bed stand-in, not Nomad"
VERSION = "{version}"
JOBS_DIR = "/var/lib/cci-testbed-jobs"
PORT = 4646
LOCK = threading.Lock()


# -- build-like jobs -------------------------------------------------------------------------------


def job_status(job):
    """running, finished or killed: from the job's own markers and its unit or container."""
    base = os.path.join(JOBS_DIR, job["id"])
    if os.path.exists(base + ".killed"):
        return "killed"
    if job.get("container"):
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", job["unit"]],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            return "killed"  # the container is gone
        running, code = out.stdout.split()
        if running == "true":
            return "running"
        return "finished" if code == "0" else "killed"
    if os.path.exists(base + ".finished"):
        return "finished"
    active = subprocess.run(
        ["systemctl", "is-active", "--quiet", job["unit"]], capture_output=True
    ).returncode
    return "running" if active == 0 else "killed"


def jobs():
    found = []
    for path in sorted(glob.glob(os.path.join(JOBS_DIR, "*.json"))):
        with open(path) as handle:
            job = json.load(handle)
        job["status"] = job_status(job)
        found.append(job)
    return found


def start_job(seconds, image):
    """A job bound to docker.service (a Docker restart kills it, as it kills a real build), or
    with an image, a real container."""
    os.makedirs(JOBS_DIR, exist_ok=True)
    job_id = uuid.uuid4().hex[:12]
    unit = f"cci-testbed-job-{job_id}"
    base = os.path.join(JOBS_DIR, job_id)
    if image:
        command = ["docker", "run", "-d", "--name", unit, image, "sleep", str(seconds)]
    else:
        # a second start (systemd restarts what is bound to a restarted docker) is a kill
        script = (
            f'if [ -e "{base}.started" ]; then touch "{base}.killed"; exit 1; fi; '
            f'touch "{base}.started"; sleep {seconds} && touch "{base}.finished"'
        )
        command = [
            "systemd-run",
            "--quiet",
            f"--unit={unit}",
            "--property=BindsTo=docker.service",
            "--property=After=docker.service",
            "/bin/sh",
            "-c",
            script,
        ]
    subprocess.run(command, check=True, capture_output=True)
    job = {
        "id": job_id,
        "unit": unit,
        "seconds": seconds,
        "container": bool(image),
        "started": time.time(),
    }
    with open(base + ".json", "w") as handle:
        json.dump(job, handle)
    return job


def stop_job(job):
    if job.get("container"):
        subprocess.run(["docker", "kill", job["unit"]], capture_output=True)
    else:
        subprocess.run(["systemctl", "stop", job["unit"]], capture_output=True)
    open(os.path.join(JOBS_DIR, job["id"] + ".killed"), "w").close()


# -- the agent -------------------------------------------------------------------------------------


def read_config(path):
    with open(path) as handle:
        text = handle.read()

    def value(pattern, default):
        found = re.search(pattern, text, re.S)
        return found.group(1) if found else default

    return {
        "name": value(r'^name\s*=\s*"([^"]*)"', os.uname().nodename),
        "data_dir": value(r'^data_dir\s*=\s*"([^"]*)"', "/opt/nomad"),
        "http": value(r'addresses\s*\{[^}]*http\s*=\s*"([^"]*)"', "127.0.0.1"),
    }


class Node:
    def __init__(self, config):
        self.name = config["name"]
        self.path = os.path.join(config["data_dir"], "standin-node.json")
        try:
            with open(self.path) as handle:
                self.state = json.load(handle)
        except (OSError, ValueError):
            self.state = {"id": str(uuid.uuid4()), "eligible": True, "drain": None}
            self.save()

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".new", "w") as handle:
            json.dump(self.state, handle)
        os.replace(self.path + ".new", self.path)

    def describe(self):
        drain = self.state["drain"]
        return {
            "ID": self.state["id"],
            "Name": self.name,
            "Status": "ready",
            "SchedulingEligibility": "eligible" if self.state["eligible"] else "ineligible",
            "DrainStrategy": None
            if drain is None
            else {
                "DrainSpec": {
                    "Deadline": drain["deadline"],
                    "IgnoreSystemJobs": drain["ignore_system"],
                },
                "StartedAt": drain["started"],
            },
        }

    def watch(self):
        """What Nomad's drainer does for batch allocations: wait for them, stop them at the
        deadline, and mark the drain complete (the node stays ineligible)."""
        while True:
            time.sleep(1)
            with LOCK:
                drain = self.state["drain"]
                if drain is None:
                    continue
                running = [j for j in jobs() if j["status"] == "running"]
                deadline = drain["deadline"]
                overdue = deadline < 0 or (
                    deadline > 0 and time.time() > drain["started"] + deadline / 1e9
                )
                if running and overdue:
                    for job in running:
                        stop_job(job)
                    running = []
                if not running:
                    self.state["drain"] = None
                    self.save()


def handler_for(node):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def node_path(self, suffix=""):
            return f"/v1/node/{node.state['id']}{suffix}"

        def do_GET(self):
            path = self.path.split("?")[0]
            with LOCK:
                if path == "/v1/agent/self":
                    self.reply(
                        200,
                        {
                            "config": {"Version": {"Version": VERSION}},
                            "member": {"Name": node.name},
                            "stats": {"client": {"node_id": node.state["id"]}},
                        },
                    )
                elif path == self.node_path():
                    self.reply(200, node.describe())
                elif path == self.node_path("/allocations"):
                    self.reply(
                        200,
                        [
                            {
                                "ID": j["id"],
                                "JobID": j["unit"],
                                "JobType": "batch",
                                "ClientStatus": {"running": "running", "finished": "complete"}.get(
                                    j["status"], "failed"
                                ),
                            }
                            for j in jobs()
                        ],
                    )
                else:
                    self.reply(404, {"error": f"{MARKER}: {path} is not answered"})

        def do_PUT(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                return self.reply(400, {"error": "bad JSON"})
            with LOCK:
                state = node.state
                if self.path == self.node_path("/eligibility"):
                    wanted = body.get("Eligibility")
                    if wanted not in ("eligible", "ineligible"):
                        return self.reply(400, {"error": "Eligibility must be set"})
                    if wanted == "eligible" and state["drain"] is not None:
                        return self.reply(400, {"error": "can not set eligible while draining"})
                    state["eligible"] = wanted == "eligible"
                elif self.path == self.node_path("/drain"):
                    spec = body.get("DrainSpec")
                    if spec is None:
                        state["drain"] = None
                        state["eligible"] = bool(body.get("MarkEligible"))
                    else:
                        state["drain"] = {
                            "deadline": int(spec.get("Deadline", 0)),
                            "ignore_system": bool(spec.get("IgnoreSystemJobs")),
                            "started": time.time(),
                        }
                        state["eligible"] = False
                else:
                    return self.reply(404, {"error": f"{MARKER}: {self.path} is not answered"})
                node.save()
                self.reply(200, {"EvalIDs": [], "Index": int(time.time())})

    return Handler


def agent(config_path):
    config = read_config(config_path)
    node = Node(config)
    server = ThreadingHTTPServer((config["http"], PORT), handler_for(node))
    signal.signal(signal.SIGHUP, lambda *_: None)  # a reload: TLS files reread (nothing here)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    threading.Thread(target=node.watch, daemon=True).start()
    server.serve_forever()


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "version":
        print(f"Nomad v{VERSION} ({MARKER})")
    elif command == "agent" and len(argv) == 4 and argv[2] == "-config":
        agent(argv[3])
    elif command == "config" and argv[2:3] == ["validate"]:
        for path in argv[3:]:
            with open(path) as handle:
                if not any(line.startswith("client {") for line in handle):
                    print(f"stand-in: {path} has no client block", file=sys.stderr)
                    return 1
        print("stand-in: only checked that a client block exists")
    elif command == "testbed-job" and argv[2:3] == ["start"]:
        image = argv[4] if len(argv) > 4 else ""
        print(json.dumps(start_job(int(argv[3]), image)))
    elif command == "testbed-job" and argv[2:3] == ["status"]:
        print(json.dumps(jobs()))
    else:
        print(MARKER, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
