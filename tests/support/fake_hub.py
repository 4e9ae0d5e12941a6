"""A fake Hugging Face Hub on 127.0.0.1: the parts of its API that huggingface_hub's `hf_hub_download`,
`snapshot_download`, `model_info` and `list_repo_tree` / `list_repo_files` use (huggingface_hub 1.x-2.x).

    GET  /api/models/{repo}/revision/{rev}         -> {"id", "sha", "siblings"}   (404 X-Error-Code on unknown)
    GET  /api/models/{repo}/tree/{rev}[/{folder}]  -> [{"type", "path", "size", "oid", "lfs"?}, ...]
    HEAD /{repo}/resolve/{rev}/{file}              -> ETag (sha256 for weights, else a sha1), X-Repo-Commit,
    GET  /{repo}/resolve/{rev}/{file}                 Content-Length, Accept-Ranges; GET honours `Range: bytes=N-`

Repositories hold commits (each a full file set); "main" is the newest. Faults for tests: `cut_once` (the first GET
of a file sends half its bytes and drops the connection), `corrupt` (a file's bytes are replaced while its listing
and ETag keep the true size and sha256). `requests` records every (method, path, Range header) served.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]


@dataclass
class FakeHub:
    """Repositories (id -> commits, oldest first) served over HTTP; `url` once started."""

    repos: dict[str, list[Commit]] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)
    corrupt: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def add_commit(self, repo: str, files: dict[str, bytes]) -> str:
        """A new commit of `repo` (becomes main) holding exactly `files`; returns its 40-hex sha."""
        commits = self.repos.setdefault(repo, [])
        sha = hashlib.sha1(f"{repo}:{len(commits)}:{sorted(files)}".encode()).hexdigest()
        commits.append(Commit(sha, dict(files)))
        return sha

    def commit(self, repo: str, rev: str) -> Commit | None:
        commits = self.repos.get(repo) or []
        if rev == "main" and commits:
            return commits[-1]
        return next((c for c in commits if c.sha == rev), None)

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _split_repo(self, rest: str) -> tuple[str, str] | None:
        """`org/name/<more>` -> (repo id, <more>) for a known repository."""
        for repo in sorted(self.hub.repos, key=len, reverse=True):
            if rest == repo or rest.startswith(repo + "/"):
                return repo, rest[len(repo) + 1:]
        return None

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
               content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._reply(status, json.dumps({"error": message}).encode(), {"X-Error-Code": code,
                                                                      "X-Error-Message": message})

    def do_HEAD(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path, self.headers.get("Range")))
        if path.startswith("/api/models/"):
            self._api(path[len("/api/models/"):])
        else:
            self._resolve(path.lstrip("/"))

    def _api(self, rest: str) -> None:
        found = self._split_repo(rest)
        if found is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        repo, more = found
        match = re.fullmatch(r"(revision|tree)/([^/]+)(?:/(.*))?", more)
        if not match:
            return self._error(404, "EntryNotFound", "unknown API route")
        kind, rev, folder = match.groups()
        commit = self.hub.commit(repo, rev)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if kind == "revision":
            body = {"id": repo, "modelId": repo, "sha": commit.sha, "private": False,
                    "siblings": [{"rfilename": name} for name in sorted(commit.files)]}
            return self._reply(200, json.dumps(body).encode())
        entries, folders = [], set()
        prefix = f"{folder}/" if folder else ""
        for name in sorted(commit.files):
            if not name.startswith(prefix):
                continue
            parts = name.split("/")
            for i in range(1, len(parts)):
                folders.add("/".join(parts[:i]))
            data = commit.files[name]
            entry = {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": _sha256(data), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "path": f, "oid": _oid(f.encode()), "size": 0}
                    for f in sorted(folders) if f.startswith(prefix)]
        return self._reply(200, json.dumps(entries).encode())

    def _resolve(self, rest: str) -> None:
        found = self._split_repo(rest)
        if found is None:
            return self._error(404, "RepoNotFound", "Repository not found")
        repo, more = found
        match = re.fullmatch(r"resolve/([^/]+)/(.+)", more)
        if not match:
            return self._error(404, "EntryNotFound", "unknown route")
        rev, name = match.groups()
        commit = self.hub.commit(repo, rev)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        if name not in commit.files:
            return self._error(404, "EntryNotFound", f"{name} does not exist")
        true = commit.files[name]
        data = self.hub.corrupt.get(name, true)
        etag = _sha256(true) if name.endswith(LFS_SUFFIXES) else _oid(true)
        headers = {"ETag": f'"{etag}"', "X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if name.endswith(LFS_SUFFIXES):
            headers["X-Linked-Size"] = str(len(true))
        if self.command == "HEAD":
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(true)))
            self.end_headers()
            return None
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
        body = data[start:]
        if name in self.hub.cut_once and not ranged:
            self.hub.cut_once.discard(name)
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        status = 206 if ranged else 200
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return self._reply(status, body, headers, content_type="application/octet-stream")
