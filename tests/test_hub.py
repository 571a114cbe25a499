"""Weights from the Hub, tested for real against a loopback Hub (``tests/hub_server.py``).

The real ``huggingface_hub`` download, cache, revision and upload code runs end to end; only the
server is ours. A socket guard makes any connection to a non-loopback address fail the test.
Cache and error mechanics use a tiny registered test architecture (a few KB, so the suite stays
fast); downloads, parity, round trip and publishing use the real AR34 parity network (41 MB).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_server import (
    TINY_ARCH,
    LoopbackHub,
    point_hf_at,
    refuse_non_loopback,
    register_tiny,
    tiny_model_folder,
    unregister_tiny,
)

from alpharefine_sdk import Refiner, WeightsError
from alpharefine_sdk.weights import hub as hubmod
from alpharefine_sdk.weights.io import CONFIG_NAME, WEIGHTS_NAME, read_safetensors

TINY = TINY_ARCH


@pytest.fixture(scope="module", autouse=True)
def tiny_architecture():
    register_tiny()
    yield
    unregister_tiny()


def _state(folder_or_net) -> dict:
    if isinstance(folder_or_net, Path):
        return read_safetensors(folder_or_net / WEIGHTS_NAME)
    return folder_or_net.state_dict()


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def model_dir(ar34, tmp_path_factory) -> Path:
    """The parity network in our format, written once per session."""
    return ar34.save_pretrained(tmp_path_factory.mktemp("hub_model") / "ar34")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    return tiny_model_folder(d / "a", 1), tiny_model_folder(d / "b", 2)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, model_dir, tiny):
    """One loopback Hub for the module with the repos the tests read."""
    h = LoopbackHub(tmp_path_factory.mktemp("loopback_hub"), lifetime=600).start()
    store = h.store
    tiny_a, tiny_b = tiny
    h.sha_a = store.publish_folder("org/tiny", tiny_a, tags=["v1"])
    h.sha_b = store.publish_folder("org/tiny", tiny_b)  # main moves on, v1 stays
    h.sha_ar34 = store.publish_folder("org/ar34", model_dir)
    bad = tmp_path_factory.mktemp("bad_repos")
    # config.json only
    (bad / "noweights").mkdir()
    shutil.copy(tiny_a / CONFIG_NAME, bad / "noweights" / CONFIG_NAME)
    store.publish_folder("org/noweights", bad / "noweights")
    # a truncated model.safetensors, served faithfully
    (bad / "corrupt").mkdir()
    shutil.copy(tiny_a / CONFIG_NAME, bad / "corrupt" / CONFIG_NAME)
    data = (tiny_a / WEIGHTS_NAME).read_bytes()
    (bad / "corrupt" / WEIGHTS_NAME).write_bytes(data[: len(data) // 3])
    store.publish_folder("org/corrupt", bad / "corrupt")
    # an architecture this release does not know
    (bad / "future").mkdir()
    cfg = json.loads((tiny_a / CONFIG_NAME).read_text())
    cfg["architecture"] = "ar99_future"
    (bad / "future" / CONFIG_NAME).write_text(json.dumps(cfg))
    shutil.copy(tiny_a / WEIGHTS_NAME, bad / "future" / WEIGHTS_NAME)
    store.publish_folder("org/future", bad / "future")
    yield h
    h.stop()


def _load(repo: str, **kw) -> dict:
    """``load_from_hub`` (what ``from_pretrained`` calls for a repo id) -> the loaded state dict."""
    args = {"revision": None, "cache_dir": None, "local_files_only": False, "token": None, **kw}
    net, _ = hubmod.load_from_hub(repo, **args)
    return net.state_dict()


@pytest.fixture
def hf_env(hub, tmp_path, monkeypatch):
    """HF_ENDPOINT -> the loopback Hub, HF_HOME -> a fresh tmp folder; no internet."""
    attempts = refuse_non_loopback(monkeypatch)
    cache = point_hf_at(monkeypatch, hub.url, tmp_path / "hf_home")
    hub.requests.clear()
    yield cache
    assert not attempts, f"a test tried to leave loopback: {attempts}"


def _same_weights(a: Refiner, b: Refiner) -> bool:
    return _equal(a.net.state_dict(), b.net.state_dict())


# ------------------------------------------------------------------------------- names
def test_resolve_name(monkeypatch):
    assert hubmod.resolve_name("org/name") == ("org/name", None)
    assert hubmod.resolve_name("my-org/ar34.v2_x") == ("my-org/ar34.v2_x", None)
    for junk in ("name", "a/b/c", "org/na me", "../x", "org/", "/abs/path", "org/a..b"):
        assert hubmod.resolve_name(junk) == (None, None), junk
    monkeypatch.setitem(hubmod.KNOWN_MODELS, "ar34-test", ("org/ar34", "a" * 40))
    assert hubmod.resolve_name("ar34-test") == ("org/ar34", "a" * 40)


def test_known_models_table_is_honest():
    # Only published repos with a pinned full commit may be listed.
    for name, (repo_id, revision) in hubmod.KNOWN_MODELS.items():
        assert "/" in repo_id and len(revision) == 40 and int(revision, 16) >= 0, name


def test_unknown_source_message(tmp_path):
    with pytest.raises(WeightsError, match="neither an existing path nor a Hub repo id"):
        Refiner.from_pretrained("no-such-model", device="cpu")
    with pytest.raises(WeightsError, match="does not exist"):
        Refiner.from_pretrained(str(tmp_path / "nope"), device="cpu")


# ------------------------------------------------------------------------------- download, cache
def test_download_then_cache_with_server_stopped(tiny, tmp_path, monkeypatch):
    refuse_non_loopback(monkeypatch)
    with LoopbackHub(tmp_path / "hub", lifetime=60) as h:
        sha = h.store.publish_folder("org/solo", tiny[0])
        cache = point_hf_at(monkeypatch, h.url, tmp_path / "home")
        assert _equal(_load("org/solo"), _state(tiny[0]))
        got = [(q.method, q.server, q.path) for q in h.requests]
    assert not h.running
    assert ("HEAD", "hub", "/org/solo/resolve/main/config.json") in got
    assert ("GET", "hub", "/org/solo/resolve/main/config.json") in got
    # the weights are fetched at the commit the config came from (a moving branch cannot mix them)
    assert ("HEAD", "hub", f"/org/solo/resolve/{sha}/model.safetensors") in got
    assert any(m == "GET" and s == "cdn" for m, s, _ in got)  # the LFS file comes from the "CDN"
    repo = cache / "models--org--solo"  # standard cache layout under HF_HOME/hub
    assert (repo / "refs" / "main").read_text() == sha
    assert {p.name for p in (repo / "snapshots" / sha).iterdir()} == {CONFIG_NAME, WEIGHTS_NAME}
    # server gone: the branch resolves through refs/main, at once, with the same weights
    t = time.perf_counter()
    assert _equal(_load("org/solo"), _state(tiny[0]))
    assert time.perf_counter() - t < 5.0


def test_revision_pinning(hub, hf_env, tiny):
    a, b = _state(tiny[0]), _state(tiny[1])
    assert not _equal(a, b)
    assert _equal(_load("org/tiny"), b)
    assert _equal(_load("org/tiny", revision="v1"), a)
    assert _equal(_load("org/tiny", revision=hub.sha_a), a)
    repo = hf_env / "models--org--tiny"
    assert {p.name for p in (repo / "snapshots").iterdir()} == {hub.sha_a, hub.sha_b}
    assert (repo / "refs" / "v1").read_text() == hub.sha_a
    assert (repo / "refs" / "main").read_text() == hub.sha_b
    # a commit already in the cache needs no request at all
    hub.requests.clear()
    assert _equal(_load("org/tiny", revision=hub.sha_a), a)
    assert hub.requests == []


def test_short_name_pins_a_revision(hub, hf_env, tiny, monkeypatch):
    from alpharefine_sdk.weights.resolve import load_source

    monkeypatch.setitem(hubmod.KNOWN_MODELS, "tiny-test", ("org/tiny", hub.sha_a))
    net, config = load_source("tiny-test")
    assert _equal(net.state_dict(), _state(tiny[0]))  # main has moved on; the name still gets commit A
    assert config.architecture == TINY
    resolved = [q.path for q in hub.requests if "/resolve/" in q.path]
    assert resolved and all(hub.sha_a in p for p in resolved)


@pytest.mark.parametrize("how", ["env", "local_files_only"])
def test_offline_mode(hub, hf_env, tiny, monkeypatch, how):
    _load("org/tiny", revision="v1")  # fill the cache
    hub.requests.clear()
    kw = {"local_files_only": True} if how == "local_files_only" else {}
    if how == "env":  # set after huggingface_hub was imported: still honoured
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _equal(_load("org/tiny", revision="v1", **kw), _state(tiny[0]))
    t = time.perf_counter()
    with pytest.raises(WeightsError, match="not in the Hub cache .* offline mode is on") as e:
        _load("org/corrupt", **kw)
    assert time.perf_counter() - t < 2.0, "offline must fail at once, not retry"
    assert "docs/weights.md" in str(e.value)
    assert hub.requests == [], [q.path for q in hub.requests]


def test_unreachable_hub_falls_back_to_cache(hub, hf_env, tiny, monkeypatch, tmp_path):
    import socket

    _load("org/tiny", revision="v1")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound but not listening: connection refused
    try:
        point_hf_at(monkeypatch, f"http://127.0.0.1:{s.getsockname()[1]}", tmp_path / "hf_home")
        t = time.perf_counter()
        assert _equal(_load("org/tiny", revision="v1"), _state(tiny[0]))
        assert time.perf_counter() - t < 5.0
    finally:
        s.close()


def test_token_goes_to_the_hub_only(hub, hf_env):
    _load("org/tiny", revision="v1", token="hf_read_token")
    auth = {(q.server, q.headers.get("authorization") or q.headers.get("Authorization")) for q in hub.requests}
    assert ("hub", "Bearer hf_read_token") in auth
    assert all(a is None for srv, a in auth if srv == "cdn")  # never forwarded to the file host


# ------------------------------------------------------------------------------- failures
def test_repo_not_found(hub, hf_env):
    with pytest.raises(WeightsError, match="'org/missing'.*does not exist, or it is private"):
        Refiner.from_pretrained("org/missing", device="cpu")


def test_revision_not_found(hub, hf_env):
    with pytest.raises(WeightsError, match="revision 'v9' does not exist; use a branch, tag or full commit"):
        _load("org/tiny", revision="v9")


def test_missing_weights_file(hub, hf_env):
    with pytest.raises(WeightsError, match="has no model.safetensors: it is not an alpharefine-sdk model repo"):
        _load("org/noweights")


def test_corrupt_weights_file(hub, hf_env):
    with pytest.raises(WeightsError, match="not a readable safetensors file.*tell the repo owner"):
        _load("org/corrupt")


def test_unknown_architecture(hub, hf_env):
    with pytest.raises(WeightsError, match="unknown architecture 'ar99_future'.*Upgrade alpharefine-sdk"):
        _load("org/future")


def test_truncated_download(hub, hf_env, monkeypatch):
    monkeypatch.setattr(hub, "truncate_downloads", True)
    with pytest.raises(WeightsError, match="downloading model.safetensors failed .*run again to retry"):
        _load("org/tiny")
    assert not list(hf_env.glob("models--org--tiny/snapshots/*/model.safetensors"))


def test_damaged_cache_is_detected(hub, hf_env):
    _load("org/tiny", revision=hub.sha_a)
    blob = (hf_env / "models--org--tiny" / "snapshots" / hub.sha_a / WEIGHTS_NAME).resolve()
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside a tensor: safetensors alone would not notice
    blob.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match its sha256.*delete"):
        _load("org/tiny", revision=hub.sha_a)


def test_hand_made_cache(tiny, tmp_path, monkeypatch):
    """A cache laid out by hand (as when copying one to an air-gapped machine) loads offline."""
    import hashlib

    refuse_non_loopback(monkeypatch)
    cache = point_hf_at(monkeypatch, "http://127.0.0.1:9", tmp_path / "home", offline=True)
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--acme--refiner"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    snap = repo / "snapshots" / sha
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    weights = (tiny[0] / WEIGHTS_NAME).read_bytes()
    blob = repo / "blobs" / hashlib.sha256(weights).hexdigest()
    blob.write_bytes(weights)
    os.symlink(os.path.relpath(blob, snap), snap / WEIGHTS_NAME)
    shutil.copy(tiny[0] / CONFIG_NAME, snap / CONFIG_NAME)  # a plain copy works too
    for kw in ({}, {"revision": sha}):
        assert _equal(_load("acme/refiner", **kw), _state(tiny[0]))
    with pytest.raises(WeightsError, match="not in the Hub cache"):
        _load("acme/refiner", revision="v2")


def test_explicit_cache_dir_wins(hub, hf_env, tmp_path):
    other = tmp_path / "elsewhere"
    _load("org/tiny", revision="v1", cache_dir=str(other))
    assert (other / "models--org--tiny" / "refs" / "v1").is_file()
    assert not (hf_env / "models--org--tiny").exists()


def test_hub_cache_env_wins_over_hf_home(hub, hf_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hubcache"))
    _load("org/tiny", revision="v1")
    assert (tmp_path / "hubcache" / "models--org--tiny").is_dir()
    assert not (hf_env / "models--org--tiny").exists()


# ------------------------------------------------------------------------------- save_pretrained
def test_save_pretrained_round_trip_bit_for_bit(ar34, model_dir, tmp_path):
    import yaml

    r = Refiner.from_pretrained(model_dir, backend="torch", device="cpu")
    assert _same_weights(r, ar34) and r.config == ar34.config
    for k, v in r.net.state_dict().items():  # bit for bit, dtype included
        ref = ar34.net.state_dict()[k]
        assert v.dtype == ref.dtype and v.numpy().tobytes() == ref.numpy().tobytes(), k
    again = r.save_pretrained(tmp_path / "again")
    a, b = read_safetensors(model_dir / WEIGHTS_NAME), read_safetensors(again / WEIGHTS_NAME)
    assert a.keys() == b.keys() and all(a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in a)
    assert json.loads((again / CONFIG_NAME).read_text()) == json.loads((model_dir / CONFIG_NAME).read_text())
    card = (model_dir / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "alpharefine-sdk"
    assert meta["license"] and "alpharefine-sdk" in meta["tags"]
    assert "converted from ar34_random.pth.tar" in card and "sha256" in card


def test_save_pretrained_never_clobbers(ar34, tmp_path):
    folder = tmp_path / "m"
    ar34.save_pretrained(folder)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ar34.save_pretrained(folder)
    ar34.save_pretrained(folder, overwrite=True)  # an earlier save may be replaced
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not ours"):
        ar34.save_pretrained(folder, overwrite=True)
    other = tmp_path / "o"
    other.mkdir()
    (other / "README.md").write_text("# my own notes\n")
    with pytest.raises(FileExistsError, match="not written by alpharefine-sdk"):
        ar34.save_pretrained(other, overwrite=True)
    assert (other / "README.md").read_text() == "# my own notes\n"


def test_hub_model_matches_original_on_parity_cases(hub, hf_env, golden, parity_frames):
    """The downloaded 41 MB model reproduces the original's boxes (two cases sharing one template)."""
    r = Refiner.from_pretrained("org/ar34", backend="torch", device="cpu")
    gets = [(q.server, q.path) for q in hub.requests if q.method == "GET"]
    assert ("hub", "/org/ar34/resolve/main/config.json") in gets and any(s == "cdn" for s, _ in gets)
    assert all("README" not in p for _, p in gets)  # only the two files we need
    agents = {q.headers.get("user-agent") or q.headers.get("User-Agent", "") for q in hub.requests}
    assert all(a.startswith(f"alpharefine-sdk/{hubmod.__version__};") for a in agents), agents
    tags, tmpl = list(golden["case_tags"]), golden["template_index"]
    first = next(i for i, t in enumerate(tags) if "outside" not in t)
    cases = [i for i, t in enumerate(tags) if "outside" not in t and tmpl[i] == tmpl[first]][:2]
    assert len(cases) == 2
    r.initialize(parity_frames[golden["ref_frame"][first]], golden["init_box"][first])
    for i in cases:
        box = r.refine(parity_frames[golden["test_frame"][i]], golden["input_box"][i]).box
        ws, hs = golden["search_window"][i][2:]
        tol = 2e-3 * max(1.0, ws / 256, hs / 256)
        np.testing.assert_allclose(box, golden["box"][i], atol=tol, rtol=0, err_msg=str(golden["case_name"][i]))


# ------------------------------------------------------------------------------- push_to_hub
def test_push_to_hub(hub, hf_env, ar34, monkeypatch):
    monkeypatch.setattr(hub, "write_token", "hf_test_write")
    info = ar34.push_to_hub("org/pushed", token="hf_test_write", commit_message="first upload")
    store = hub.store
    assert store.resolve("org/pushed", "main") == info.oid
    files = store.tree("org/pushed", info.oid)
    assert set(files) == {".gitattributes", CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    assert 'Refiner.from_pretrained("org/pushed")' in files["README.md"].decode()
    assert any(p.endswith("/info/lfs/objects/batch") for p in hub.paths("POST"))  # weights went as LFS
    assert hub.commits[-1][3] == "first upload"
    r = Refiner.from_pretrained("org/pushed", revision=info.oid, backend="torch", device="cpu")
    assert _same_weights(r, ar34)
    # a branch
    dev = ar34.push_to_hub("org/pushed", token="hf_test_write", revision="dev")
    assert store.resolve("org/pushed", "dev") == dev.oid
    # no token
    with pytest.raises(WeightsError, match="not allowed to write \\(HTTP 401\\).*token"):
        ar34.push_to_hub("org/pushed")
    # no repo and create_repo=False
    with pytest.raises(WeightsError, match="'org/absent'.*not found: create it first"):
        ar34.push_to_hub("org/absent", token="hf_test_write", create_repo=False)


def test_push_refuses_bad_id_and_offline(ar34, hf_env, monkeypatch):
    with pytest.raises(WeightsError, match="repo_id must look like 'org/name'"):
        ar34.push_to_hub("not a repo")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="offline mode is on"):
        ar34.push_to_hub("org/x")
