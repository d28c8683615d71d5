"""A small Hugging Face Hub over HTTP on 127.0.0.1, for the real `huggingface_hub` client.

The network is closed here, so uploads are tested end to end against this server, reached
through `HF_ENDPOINT` (or `HfApi(endpoint=...)`). It implements the requests huggingface_hub
2.x makes for `create_repo`, `create_commit` and `upload_folder` when xet is off
(HF_HUB_DISABLE_XET=1, read when huggingface_hub is imported):

- POST /api/repos/create                               -> {"url": <endpoint>/<ns>/<name>}
- POST /api/models/<repo>/preupload/<revision>         -> upload mode per file (binary = lfs)
- POST /<repo>.git/info/lfs/objects/batch              -> a PUT href per object it lacks
- PUT  /lfs/<oid>, POST /lfs/verify                     -> stores the bytes (sha256 checked)
- POST /api/models/<repo>/commit/<revision> (ndjson)   -> a new revision of the repo
- GET  /api/models/<repo>[/revision/<revision>]        -> {"id", "sha"} (repo_info)
- POST /api/validate-yaml                              -> README.md metadata is YAML (or 400)

Every request is recorded (method, path, its Authorization header). `fail_next(n, status)`
makes the next n requests fail, `fail_always(status)` every one, to test a Hub outage;
`hold()` keeps every request waiting until `release()`, to hold an upload in flight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER = "local-user"


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]  # the whole tree at this revision
    changed: list[str]  # the paths this commit added or replaced


@dataclass
class Repo:
    repo_id: str
    private: bool | None
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> dict[str, bytes]:
        return self.commits[-1].files if self.commits else {}


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None


class LocalHub:
    """The server's state and its thread; `endpoint` is what HF_ENDPOINT should be."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._failures_left = 0
        self._failure_status = 500
        self._open = threading.Event()
        self._open.set()
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self._failures_left, self._failure_status = count, status

    def fail_always(self, status: int = 500) -> None:
        self.fail_next(10**9, status)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def held(self) -> int:
        """How many requests have arrived so far (held ones included)."""
        with self.lock:
            return len(self.requests)

    def commits(self, repo_id: str) -> list[Commit]:
        with self.lock:
            return list(self.repos[repo_id].commits) if repo_id in self.repos else []

    def take_failure(self) -> int | None:
        with self.lock:
            if self._failures_left <= 0:
                return None
            self._failures_left -= 1
            return self._failure_status

    def repo(self, repo_id: str) -> Repo:
        return self.repos[repo_id]


_BATCH = re.compile(
    r"^/(?:(?:datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$"
)
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<what>preupload|commit)/(?P<rev>[^/?]+)")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/?]+))?$")


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet: tests read self.hub.requests
        return

    # --- plumbing ---
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, payload: Any = None) -> None:
        data = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body()
        hub = self.hub
        with hub.lock:
            hub.requests.append(Request(method, path, self.headers.get("Authorization")))
        hub._open.wait()
        status = hub.take_failure()
        if status is not None:
            self._reply(status, {"error": "the local hub is failing on purpose"})
            return
        try:
            status, payload = self._route(method, path, body)
        except KeyError as error:
            status, payload = 404, {"error": f"not found: {error}"}
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    # --- the Hub ---
    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        hub = self.hub
        if method == "POST" and path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request.get('organization') or USER}/{request['name']}"
            with hub.lock:
                if repo_id in hub.repos:  # the Hub names the existing repo in its 409
                    return 409, {
                        "error": "You already created this model repo",
                        "url": f"{hub.endpoint}/{repo_id}",
                    }
                hub.repos[repo_id] = Repo(repo_id, request.get("visibility") == "private")
            return 200, {"url": f"{hub.endpoint}/{repo_id}"}
        if method == "POST" and path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body)["content"])
        if method == "PUT" and path.startswith("/lfs/"):
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                return 400, {"error": "sha256 does not match the oid"}
            with hub.lock:
                hub.lfs[oid] = body
            return 200, {}
        if method == "POST" and path == "/lfs/verify":
            return (200, {}) if json.loads(body)["oid"] in hub.lfs else (404, {"error": "no oid"})
        match = _BATCH.match(path)
        if method == "POST" and match:
            hub.repo(match["repo"])
            objects = []
            for item in json.loads(body)["objects"]:
                entry = {"oid": item["oid"], "size": item["size"]}
                if item["oid"] not in hub.lfs:
                    entry["actions"] = {
                        "upload": {"href": f"{hub.endpoint}/lfs/{item['oid']}"},
                        "verify": {"href": f"{hub.endpoint}/lfs/verify"},
                    }
                objects.append(entry)
            return 200, {"transfer": "basic", "objects": objects}
        match = _API.match(path)
        if method == "POST" and match and match["what"] == "preupload":
            head = hub.repo(match["repo"]).head
            files = []
            for item in json.loads(body)["files"]:
                lfs = b"\0" in base64.b64decode(item["sample"])  # binary files go to LFS
                known = head.get(item["path"])
                oid = None
                if known is not None:  # the client skips a file whose oid is unchanged
                    oid = hashlib.sha256(known).hexdigest() if lfs else _git_oid(known)
                mode = "lfs" if lfs else "regular"
                files.append(
                    {"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid}
                )
            return 200, {"files": files}
        if method == "POST" and match and match["what"] == "commit":
            return self._commit(hub.repo(match["repo"]), body)
        match = _INFO.match(path)
        if method == "GET" and match:
            repo = hub.repo(match["repo"])
            sha = repo.commits[-1].oid if repo.commits else "0" * 40
            return 200, {"id": repo.repo_id, "sha": sha, "private": bool(repo.private)}
        return 404, {"error": f"the local hub has no {method} {path}"}

    def _validate_yaml(self, content: str) -> tuple[int, Any]:
        import yaml

        if content.startswith("---\n"):
            try:
                yaml.safe_load(content.split("\n---", 1)[0][4:])
            except yaml.YAMLError as error:
                return 400, {"error": f"Invalid metadata in README.md: {error}"}
        return 200, {"warnings": []}

    def _commit(self, repo: Repo, body: bytes) -> tuple[int, Any]:
        hub = self.hub
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        message = next(line["value"]["summary"] for line in lines if line["key"] == "header")
        files = dict(repo.head)
        changed = []
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                changed.append(value["path"])
            elif key == "lfsFile":
                if value["oid"] not in hub.lfs:
                    return 400, {"error": f"LFS object {value['oid']} was never uploaded"}
                files[value["path"]] = hub.lfs[value["oid"]]
                changed.append(value["path"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
        oid = hashlib.sha1(f"{len(repo.commits)}:{message}:{sorted(changed)}".encode()).hexdigest()
        with hub.lock:
            repo.commits.append(Commit(oid, message, files, changed))
        return 200, {"commitUrl": f"{hub.endpoint}/{repo.repo_id}/commit/{oid}", "commitOid": oid}


def _git_oid(content: bytes) -> str:
    """The git blob sha1 huggingface_hub compares against (`git hash-object`)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
