"""A loopback stand-in for the Hugging Face Hub, for tests that must not touch the internet.

It serves repos laid out on disk (``root/<org>/<name>/commits/<sha>/<files>`` and ``refs.json``)
with the parts of the Hub protocol ``huggingface_hub`` 2.x uses:

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}``: regular files answer 200 with an
  ``ETag`` (git blob sha1), ``X-Repo-Commit`` and ``Content-Length``; LFS files (``*.safetensors``)
  answer 302 with ``X-Linked-Etag`` (sha256), ``X-Linked-Size`` and a ``Location`` on a second
  "CDN" server (another port, so the client treats it as a foreign host as it does on the Hub).
  Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).
* ``GET /api/models/{repo}[/revision/{rev}]`` (repo info), ``POST /api/repos/create``, ``/api/validate-yaml``, ``/api/models/{repo}/preupload/{rev}``,
  ``/{repo}.git/info/lfs/objects/batch`` + ``PUT`` of the blob (basic transfer),
  ``/api/models/{repo}/commit/{rev}`` (NDJSON) and ``/api/models/{repo}/branch/{branch}``: what
  ``HfApi.create_repo`` + ``upload_folder`` need when Xet is disabled.

Both servers bind 127.0.0.1 on free ports, run in daemon threads and shut themselves down after
``lifetime`` seconds at the latest. Every request is recorded in ``requests`` for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors",)
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path: str) -> bool:
    return path.endswith(LFS_SUFFIXES)


class RepoStore:
    """Model repos on disk: immutable commits (full file trees) and a table of refs."""

    def __init__(self, root: Union[str, Path]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- layout
    def repo_dir(self, repo_id: str) -> Path:
        return self.root / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self.repo_dir(repo_id) / "refs.json").is_file()

    def refs(self, repo_id: str) -> Dict[str, str]:
        return json.loads((self.repo_dir(repo_id) / "refs.json").read_text())

    def _write_refs(self, repo_id: str, refs: Dict[str, str]) -> None:
        (self.repo_dir(repo_id) / "refs.json").write_text(json.dumps(refs, indent=1))

    def resolve(self, repo_id: str, revision: str) -> Optional[str]:
        """Branch/tag name or full commit sha -> commit sha (None when unknown)."""
        refs = self.refs(repo_id)
        if revision in refs:
            return refs[revision]
        if len(revision) == 40 and (self.repo_dir(repo_id) / "commits" / revision).is_dir():
            return revision
        return None

    def file(self, repo_id: str, commit: str, filename: str) -> Optional[Path]:
        p = self.repo_dir(repo_id) / "commits" / commit / filename
        return p if p.is_file() else None

    def tree(self, repo_id: str, commit: str) -> Dict[str, bytes]:
        base = self.repo_dir(repo_id) / "commits" / commit
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    # ---------------------------------------------------------------- writing
    def create(self, repo_id: str) -> str:
        """Create a repo whose ``main`` holds a ``.gitattributes``, as the Hub does."""
        with self._lock:
            if self.exists(repo_id):
                raise FileExistsError(repo_id)
            self.repo_dir(repo_id).mkdir(parents=True)
            self._write_refs(repo_id, {})
        return self.commit(repo_id, {".gitattributes": GITATTRIBUTES}, branch="main")

    def commit(
        self,
        repo_id: str,
        files: Dict[str, bytes],
        *,
        branch: str = "main",
        deleted: Iterable[str] = (),
        tags: Iterable[str] = (),
    ) -> str:
        """New commit on ``branch``: the parent's tree plus ``files`` minus ``deleted``."""
        with self._lock:
            refs = self.refs(repo_id)
            parent = refs.get(branch)
            tree = self.tree(repo_id, parent) if parent else {}
            for d in deleted:
                tree.pop(d, None)
            tree.update(files)
            h = hashlib.sha1(f"{parent}|{time.time_ns()}".encode())
            for name in sorted(tree):
                h.update(name.encode() + b"\0" + hashlib.sha256(tree[name]).digest())
            sha = h.hexdigest()
            base = self.repo_dir(repo_id) / "commits" / sha
            for name, data in tree.items():
                (base / name).parent.mkdir(parents=True, exist_ok=True)
                (base / name).write_bytes(data)
            base.mkdir(parents=True, exist_ok=True)
            refs[branch] = sha
            for t in tags:
                refs[t] = sha
            self._write_refs(repo_id, refs)
            return sha

    def publish_folder(
        self, repo_id: str, folder: Union[str, Path], *, branch: str = "main", tags: Iterable[str] = ()
    ) -> str:
        """Commit every file of ``folder`` (creating the repo if needed); returns the commit sha."""
        if not self.exists(repo_id):
            self.create(repo_id)
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit(repo_id, files, branch=branch, tags=tags)

    def create_branch(self, repo_id: str, branch: str, start: Optional[str] = None) -> None:
        with self._lock:
            refs = self.refs(repo_id)
            if branch in refs:
                raise FileExistsError(branch)
            refs[branch] = refs[start or "main"] if (start or "main") in refs else start  # type: ignore[assignment]
            self._write_refs(repo_id, refs)

    def remove(self, repo_id: str) -> None:
        shutil.rmtree(self.repo_dir(repo_id), ignore_errors=True)


@dataclass
class Request:
    method: str
    path: str
    headers: Dict[str, str]
    server: str  # "hub" or "cdn"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: "LoopbackHub"
    role: str


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    # ---------------------------------------------------------------- plumbing
    @property
    def hub(self) -> "LoopbackHub":
        return self.server.hub

    def _record(self) -> str:
        path = urlsplit(self.path).path
        self.hub.requests.append(Request(self.command, path, dict(self.headers.items()), self.server.role))
        return path

    def _send(
        self, status: int, body: bytes = b"", headers: Optional[Dict[str, str]] = None, *, head: bool = False
    ) -> None:
        self.send_response(status)
        hdrs = {"Content-Length": str(len(body)), **(headers or {})}
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, obj: object, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(
        self,
        status: int,
        code: Optional[str],
        message: str,
        *,
        head: bool = False,
        extra: Optional[Dict[str, str]] = None,
    ) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(
            status, json.dumps({"error": message}).encode(), {"Content-Type": "application/json", **headers}, head=head
        )

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        token = self.hub.write_token
        return token is None or self.headers.get("Authorization") == f"Bearer {token}"

    # ---------------------------------------------------------------- verbs
    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, *, head: bool) -> None:
        path = self._record()
        if self.server.role == "cdn":
            return self._cdn(path, head=head)
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), unquote("/".join(parts[4:]))
            return self._resolve(repo_id, revision, filename, head=head)
        if len(parts) in (4, 6) and parts[:2] == ["api", "models"] and (len(parts) == 4 or parts[4] == "revision"):
            return self._repo_info("/".join(parts[2:4]), unquote(parts[5]) if len(parts) == 6 else "main", head=head)
        self._error(404, None, f"no route for {path}", head=head)

    def _lookup_commit(self, repo_id: str, revision: str, *, head: bool) -> Optional[str]:
        """The commit ``revision`` names in ``repo_id``, or None after answering the Hub's 404."""
        store = self.hub.store
        if not store.exists(repo_id):
            self._error(404, "RepoNotFound", "Repository not found", head=head)
            return None
        commit = store.resolve(repo_id, revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, head=head)
        return commit

    def _repo_info(self, repo_id: str, revision: str, *, head: bool) -> None:
        store = self.hub.store
        commit = self._lookup_commit(repo_id, revision, head=head)
        if commit is None:
            return None
        siblings = [{"rfilename": name} for name in store.tree(repo_id, commit)]
        self._json(200, {"id": repo_id, "sha": commit, "siblings": siblings, "private": False})

    def _resolve(self, repo_id: str, revision: str, filename: str, *, head: bool) -> None:
        store = self.hub.store
        commit = self._lookup_commit(repo_id, revision, head=head)
        if commit is None:
            return None
        f = store.file(repo_id, commit, filename)
        if f is None:
            return self._error(404, "EntryNotFound", "Entry not found", head=head, extra={"X-Repo-Commit": commit})
        data = f.read_bytes()
        if is_lfs(filename):
            sha256 = hashlib.sha256(data).hexdigest()
            self.hub.blobs[sha256] = f
            return self._send(
                302,
                b"",
                {
                    "Location": f"{self.hub.cdn_url}/blobs/{sha256}",
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{sha256}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": f'"{git_blob_sha1(data)}"',
                },
                head=head,
            )
        self._send(200, data, {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": commit}, head=head)

    def _cdn(self, path: str, *, head: bool) -> None:
        parts = path.strip("/").split("/")
        f = self.hub.blobs.get(parts[-1]) if len(parts) == 2 and parts[0] == "blobs" else None
        if f is None:
            return self._send(404, b"NoSuchKey", head=head)
        data = f.read_bytes()
        if self.hub.truncate_downloads:
            data = data[: len(data) // 2]  # a broken mirror: less than X-Linked-Size promised
        self._send(200, data, {"Content-Type": "application/octet-stream"}, head=head)

    def do_PUT(self) -> None:
        path = self._record()
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "_lfs_upload":
            data = self._body()
            if hashlib.sha256(data).hexdigest() != parts[1]:
                return self._error(400, None, "sha256 mismatch")
            self.hub.uploaded[parts[1]] = data
            return self._send(200)
        self._error(404, None, f"no route for PUT {path}")

    def do_POST(self) -> None:
        path = self._record()
        body = self._body()
        store = self.hub.store
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body or b"{}"))
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            try:
                store.create(repo_id)
            except FileExistsError:  # the Hub answers 409 with the repo url in the body
                msg = "You already created this model repo"
                return self._json(409, {"error": msg, "url": f"{self.hub.url}/{repo_id}"}, {"X-Error-Message": msg})
            return self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})
        parts = path.strip("/").split("/")
        if path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch(json.loads(body))
        if len(parts) >= 5 and parts[0] == "api" and parts[1] == "models":
            repo_id, action, rev = f"{parts[2]}/{parts[3]}", parts[4], unquote("/".join(parts[5:]))
            if not store.exists(repo_id):
                return self._error(404, "RepoNotFound", "Repository not found")
            if action == "preupload":
                return self._preupload(repo_id, rev, json.loads(body))
            if action == "commit":
                return self._commit(repo_id, rev, body)
            if action == "branch":
                try:
                    start = (json.loads(body) if body else {}).get("startingPoint")
                    store.create_branch(repo_id, rev, start)
                except FileExistsError:
                    return self._error(409, None, "Reference already exists")
                return self._json(200, {})
        self._error(404, None, f"no route for POST {path}")

    # ---------------------------------------------------------------- API endpoints
    def _validate_yaml(self, req: dict) -> None:
        import yaml

        content: str = req.get("content", "")
        errors: List[dict] = []
        if content.startswith("---\n"):
            try:
                meta = yaml.safe_load(content.split("\n---", 1)[0][4:])
                if not isinstance(meta, dict):
                    errors.append({"message": "metadata must be a YAML mapping"})
            except yaml.YAMLError as e:
                errors.append({"message": f"invalid YAML: {e}"})
        status = 400 if errors else 200
        self._json(status, {"errors": errors, "warnings": []})

    def _preupload(self, repo_id: str, rev: str, req: dict) -> None:
        commit = self.hub.store.resolve(repo_id, rev)
        files = []
        for f in req["files"]:
            oid = None
            existing = self.hub.store.file(repo_id, commit, f["path"]) if commit else None
            if existing is not None:
                data = existing.read_bytes()
                oid = hashlib.sha256(data).hexdigest() if is_lfs(f["path"]) else git_blob_sha1(data)
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if is_lfs(f["path"]) else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json(200, {"files": files, "commitOid": commit})

    def _lfs_batch(self, req: dict) -> None:
        objects = []
        for o in req.get("objects", []):
            entry = {"oid": o["oid"], "size": o["size"]}
            if o["oid"] not in self.hub.uploaded:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/_lfs_upload/{o['oid']}"}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _commit(self, repo_id: str, rev: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        files: Dict[str, bytes] = {}
        deleted: List[str] = []
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.hub.uploaded.get(value["oid"])
                if data is None:
                    return self._error(422, None, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = data
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
        if self.hub.store.resolve(repo_id, rev) is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id: " + rev)
        sha = self.hub.store.commit(repo_id, files, branch=rev, deleted=deleted)
        self.hub.commits.append((repo_id, rev, sha, lines[0]["value"].get("summary", "")))
        self._json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}",
                "commitOid": sha,
                "success": True,
                "pullRequestUrl": None,
            },
        )


class LoopbackHub:
    """Start with ``with LoopbackHub(tmp_path / "hub") as hub:``; ``hub.url`` is the endpoint."""

    def __init__(self, root: Union[str, Path], *, lifetime: float = 120.0, write_token: Optional[str] = None) -> None:
        self.store = RepoStore(root)
        self.lifetime = lifetime
        self.write_token = write_token
        self.requests: List[Request] = []
        self.blobs: Dict[str, Path] = {}
        self.uploaded: Dict[str, bytes] = {}
        self.commits: List[Tuple[str, str, str, str]] = []
        self.truncate_downloads = False
        self._servers: List[_Server] = []
        self._timer: Optional[threading.Timer] = None

    def _serve(self, role: str) -> _Server:
        srv = _Server(("127.0.0.1", 0), _Handler)
        srv.hub, srv.role = self, role
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(srv)
        return srv

    def start(self) -> "LoopbackHub":
        hub, cdn = self._serve("hub"), self._serve("cdn")
        self.url = f"http://127.0.0.1:{hub.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{cdn.server_address[1]}"
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop both servers (idempotent); later requests get 'connection refused'."""
        if self._timer is not None:
            self._timer.cancel()
        servers, self._servers = self._servers, []
        for srv in servers:
            srv.shutdown()
            srv.server_close()

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def paths(self, method: Optional[str] = None) -> List[str]:
        return [r.path for r in self.requests if method is None or r.method == method]

    def __enter__(self) -> "LoopbackHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def point_hf_at(monkeypatch: Any, endpoint: str, home: Union[str, Path], *, offline: bool = False) -> Path:
    """Point ``huggingface_hub`` at ``endpoint`` with ``home`` as ``HF_HOME`` (cache in ``home/hub``).

    Sets the environment variables *and* the ``huggingface_hub.constants`` read at import time,
    disables Xet (uploads use the LFS protocol the loopback server speaks) and the agent-registry
    fetch, and drops any token, so nothing can leave the machine. Returns the cache folder.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import _detect_agent

    home = Path(home)
    cache = home / "hub"
    for var in (
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    patches = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": offline,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
    }
    for name, value in patches.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_detect_agent, "_registry", _detect_agent._EMPTY_REGISTRY)
    return cache


def refuse_non_loopback(monkeypatch: Any) -> List[str]:
    """Make every socket connection to a non-loopback address fail (and record it)."""
    import ipaddress
    import socket

    attempts: List[str] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                attempts.append(str(host))
                raise ConnectionRefusedError(f"test guard: refusing to connect to {host} (tests stay on loopback)")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


# ------------------------------------------------------------------------------- a tiny test model
TINY_ARCH = "hubtest_tiny"


def tiny_net() -> Any:
    """A few-KB network (conv + batch norm: float weights, running stats, an int64 counter)."""
    import torch

    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))


def register_tiny() -> None:
    """Make ``TINY_ARCH`` buildable, so cache mechanics run on a tiny model instead of 41 MB."""
    from alpharefine_sdk.nn.registry import ARCHITECTURES

    ARCHITECTURES[TINY_ARCH] = tiny_net


def unregister_tiny() -> None:
    from alpharefine_sdk.nn.registry import ARCHITECTURES

    ARCHITECTURES.pop(TINY_ARCH, None)


def tiny_model_folder(folder: Union[str, Path], seed: int) -> Path:
    """A model folder in our format holding a tiny network with seeded random weights."""
    import torch

    from alpharefine_sdk.config import ModelConfig
    from alpharefine_sdk.weights.io import save_model_folder

    torch.manual_seed(seed)
    net = tiny_net()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
    config = ModelConfig(architecture=TINY_ARCH, license="mit", source=f"test seed {seed}")
    return save_model_folder(net, config, Path(folder))
