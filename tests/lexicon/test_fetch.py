"""fetch-wheels against a real HTTP server on 127.0.0.1 serving the pinned files (no mocked HTTP client)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from affectgpt.bench.protocol import resolve_protocol
from affectgpt.cli import main
from affectgpt.errors import InputError
from affectgpt.lexicon.fetch import RELEASES, fetch_wheels, fetched_dir
from affectgpt.lexicon.official import WHEEL_FILES

pytestmark = pytest.mark.reference


class _Server:
    """Serves <commit>/<folder>/<file> for both releases from the reference copies; counts requests."""

    def __init__(self, reference: Path) -> None:
        self.files: dict[str, bytes] = {}
        for version, folder in (("2025", "emotion_wheel"), ("2026", "emotion_wheel-2026")):
            release = RELEASES[version]
            for name in WHEEL_FILES:
                self.files[f"/{release.commit}/{release.folder}/{name}"] = (reference / folder / name).read_bytes()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Fetched files must not leak into the session cache other tests share."""
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def server(reference_dir) -> Iterator[_Server]:
    srv = _Server(reference_dir)
    yield srv
    srv.close()


def test_fetch_verifies_caches_and_is_then_found_by_the_scorer(server, capsys):
    dest = fetched_dir("2025")
    assert main(["bench", "fetch-wheels", "--base-url", server.url]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(WHEEL_FILES)
    assert len(server.requests) == len(WHEEL_FILES)
    # a verified copy is not downloaded again
    assert fetch_wheels("2025", base_url=server.url) == dest
    assert len(server.requests) == len(WHEEL_FILES)
    # the default protocol now finds the fetched files
    assert resolve_protocol("auto").maps.protocol == "official-2025"


def test_fetch_2026_uses_its_own_commit_and_folder(server):
    folder = fetch_wheels("2026", base_url=server.url)
    assert folder == fetched_dir("2026")
    assert all(RELEASES["2026"].commit in r and "MER2026" in r for r in server.requests)
    assert resolve_protocol("official-2026").maps.protocol == "official-2026"


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    release = RELEASES["2025"]
    server.files[f"/{release.commit}/{release.folder}/wheel4.xlsx"] = b"tampered"
    dest = tmp_path / "out" / "wheels"
    with pytest.raises(InputError, match="checksum mismatch") as info:
        fetch_wheels("2025", base_url=server.url, dest=dest)
    assert "wheel4.xlsx" in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []  # neither the folder nor a staging folder is left


def test_a_dest_folder_holding_other_files_is_never_replaced(server, tmp_path, capsys):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "thesis.tex").write_text("years of work")
    code = main(["bench", "fetch-wheels", "--base-url", server.url, "--dest", str(dest)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "thesis.tex" in err and "--dest" in err
    assert (dest / "thesis.tex").read_text() == "years of work" and not server.requests
    (tmp_path / "file").write_text("x")
    assert main(["bench", "fetch-wheels", "--base-url", server.url, "--dest", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    # a folder holding an incomplete set of wheel files is refilled
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "wheel1.xlsx").write_bytes(b"half")
    assert fetch_wheels("2025", base_url=server.url, dest=partial) == partial
    assert sorted(p.name for p in partial.iterdir()) == sorted(WHEEL_FILES)


def test_an_oversized_download_is_cut_off_and_refused(server, tmp_path):
    from affectgpt.lexicon import fetch

    release = RELEASES["2025"]
    server.files[f"/{release.commit}/{release.folder}/wheel2.xlsx"] = bytes(fetch.MAX_DOWNLOAD + 10)
    with pytest.raises(InputError, match="more than 16 MiB") as info:
        fetch_wheels("2025", base_url=server.url, dest=tmp_path / "w")
    assert "wheel2.xlsx" in str(info.value) and not (tmp_path / "w").exists()


def test_http_error_exits_2_through_the_cli(server, tmp_path, capsys):
    release = RELEASES["2025"]
    del server.files[f"/{release.commit}/{release.folder}/format.csv"]
    code = main(["bench", "fetch-wheels", "--base-url", server.url, "--dest", str(tmp_path / "w")])
    assert code == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="download failed"):
        fetch_wheels("2025", base_url="http://127.0.0.1:9", dest=tmp_path / "w", timeout=2)


def test_official_protocol_without_files_says_how_to_get_them():
    with pytest.raises(InputError, match="fetch-wheels"):
        resolve_protocol("official")
