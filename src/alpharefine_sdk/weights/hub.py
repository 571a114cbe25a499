"""Weights on the Hugging Face Hub: short names, cached downloads, ``save_pretrained``, ``push_to_hub``.

Only ``config.json`` and ``model.safetensors`` are ever downloaded, into the standard Hub cache
(``HF_HUB_CACHE``, else ``HF_HOME/hub``). ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` and
``HF_HUB_CACHE`` are read when a model is loaded, not only when ``huggingface_hub`` is imported.
A model already in the cache loads with the network down; with ``local_files_only=True`` or
``HF_HUB_OFFLINE=1`` nothing is sent at all. Every failure becomes one :class:`WeightsError`
that says what to do.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from .._files import file_sha256
from .._version import __version__
from ..config import ModelConfig
from ..errors import WeightsError
from .io import CONFIG_NAME, WEIGHTS_NAME, load_model_folder, save_model_folder
from .model_card import CARD_MARKER, LIBRARY_NAME, render_model_card

PathLike = Union[str, Path]

#: Short name -> (Hub repo id, pinned commit). A release of this library always loads the same
#: weights for a short name. Empty until weights are published; add only ids and commits that exist.
KNOWN_MODELS: Dict[str, Tuple[str, str]] = {}

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "on", "yes", "true"}


def resolve_name(name: str) -> Tuple[Optional[str], Optional[str]]:
    """``(repo_id, pinned_revision)`` for a short name in :data:`KNOWN_MODELS`, ``(name, None)`` for
    an ``"org/name"`` repo id, ``(None, None)`` for anything else."""
    if name in KNOWN_MODELS:
        repo_id, revision = KNOWN_MODELS[name]
        return repo_id, revision
    if _REPO_ID.fullmatch(name) and ".." not in name and "--" not in name:
        return name, None
    return None, None


# ---------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class HubSettings:
    """Endpoint, cache folder and offline flag in force for one call."""

    endpoint: str
    cache_dir: str
    offline: bool


def hub_settings(cache_dir: Optional[PathLike] = None, local_files_only: bool = False) -> HubSettings:
    """Read ``HF_ENDPOINT`` / ``HF_HUB_CACHE`` / ``HF_HOME`` / ``HF_HUB_OFFLINE`` now (the environment
    wins over what ``huggingface_hub`` saw at import time; explicit arguments win over both)."""
    from huggingface_hub import constants

    env = os.environ
    endpoint = (env.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    if cache_dir is None:
        if env.get("HF_HUB_CACHE"):
            cache_dir = env["HF_HUB_CACHE"]
        elif env.get("HUGGINGFACE_HUB_CACHE"):
            cache_dir = env["HUGGINGFACE_HUB_CACHE"]
        elif env.get("HF_HOME"):
            cache_dir = os.path.join(env["HF_HOME"], "hub")
        else:
            cache_dir = constants.HF_HUB_CACHE
    cache = os.path.expandvars(os.path.expanduser(str(cache_dir)))
    offline = (
        bool(local_files_only) or env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or constants.HF_HUB_OFFLINE
    )
    return HubSettings(endpoint, cache, offline)


# ---------------------------------------------------------------------------------------- loading
def load_from_hub(
    repo_id: str,
    *,
    revision: Optional[str] = None,
    cache_dir: Optional[PathLike] = None,
    local_files_only: bool = False,
    token: Optional[Union[str, bool]] = None,
) -> Tuple[Any, ModelConfig]:
    """Download (or find in the cache) ``config.json`` + ``model.safetensors`` of ``repo_id`` at
    ``revision`` (branch, tag or commit; default ``main``) and load them strictly.

    Raises:
        WeightsError: repo or revision not found, offline and not cached, file missing, download
            incomplete, corrupt safetensors, unknown architecture.
    """
    from huggingface_hub import hf_hub_download

    s = hub_settings(cache_dir, local_files_only)
    where = f"Hub repo {repo_id!r} (revision {revision or 'main'!r}, endpoint {s.endpoint})"
    paths: Dict[str, Path] = {}
    pinned = revision
    for filename in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            paths[filename] = Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=pinned,
                    cache_dir=s.cache_dir,
                    local_files_only=s.offline,
                    token=token,
                    endpoint=s.endpoint,
                    library_name=LIBRARY_NAME,
                    library_version=__version__,
                )
            )
        except Exception as e:  # mapped one by one below; nothing is swallowed
            raise _download_error(e, repo_id, revision, filename, s, where) from None
        commit = paths[filename].parent.name
        if _COMMIT.fullmatch(commit):
            pinned = commit  # the weights come from the same commit as the config, even if a branch moves
    snapshot = paths[WEIGHTS_NAME].parent
    context = f"{where}, commit {snapshot.name}"
    damaged = (
        f"Cached copy: {snapshot}. If the cache is damaged, delete {snapshot.parent.parent} and load again; "
        "if this persists, the published file is broken: tell the repo owner"
    )
    try:
        _verify_cached_blob(paths[WEIGHTS_NAME])
    except WeightsError as e:
        raise WeightsError(f"{context}: {e}. {damaged}") from None
    try:
        return load_model_folder(paths[WEIGHTS_NAME], paths[CONFIG_NAME])
    except (WeightsError, ValueError) as e:
        msg = str(e).rstrip(". ")
        hint = f". {damaged}" if "safetensors" in msg else ""
        raise WeightsError(f"{context}: {msg}{hint}") from None


def _verify_cached_blob(path: Path) -> None:
    """Blobs of LFS files are named by their sha256: check it, so a damaged cache is caught."""
    real = path.resolve()
    if not _SHA256_NAME.fullmatch(real.name):
        return
    if file_sha256(real) != real.name:
        raise WeightsError(
            f"the cached {path.name} does not match its sha256 {real.name} (truncated or modified on disk)"
        )


def _download_error(
    e: Exception, repo_id: str, revision: Optional[str], filename: str, s: HubSettings, where: str
) -> WeightsError:
    """One clear, actionable message per failure of ``hf_hub_download``."""
    from huggingface_hub import errors as hfe

    if isinstance(e, hfe.GatedRepoError):
        return WeightsError(
            f"{where} is gated: accept its conditions on the Hub and pass token=... (or run `hf auth login`)"
        )
    if isinstance(e, hfe.RepositoryNotFoundError):
        local = Path(repo_id).expanduser().resolve()
        return WeightsError(
            f"{where} does not exist, or it is private and no valid token was given: check the repo id, pass "
            f"token=... for a private repo, or, if you meant a local folder, it does not exist ({local})"
        )
    if isinstance(e, hfe.RevisionNotFoundError):
        return WeightsError(
            f"{where}: revision {revision!r} does not exist; use a branch, tag or full commit hash of that repo"
        )
    if isinstance(e, hfe.LocalEntryNotFoundError):
        if s.offline:
            return WeightsError(
                f"{where}: {filename} is not in the Hub cache at {s.cache_dir} and offline mode is on "
                "(local_files_only=True or HF_HUB_OFFLINE=1): load it once with network access, copy a cache "
                "that holds it (see docs/weights.md), or point cache_dir / HF_HUB_CACHE at one"
            )
        return WeightsError(
            f"{where}: could not reach the Hub and {filename} is not in the cache at {s.cache_dir}: check the "
            "connection, proxy and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 and use a cache that holds the model"
        )
    # (checked after LocalEntryNotFoundError: before huggingface_hub 1.0 it subclasses EntryNotFoundError)
    if isinstance(e, getattr(hfe, "RemoteEntryNotFoundError", hfe.EntryNotFoundError)):
        return WeightsError(
            f"{where} has no {filename}: it is not an alpharefine-sdk model repo (publish one with "
            "`alpharefine-sdk convert CHECKPOINT OUT_DIR --push-to-hub REPO_ID` or Refiner.push_to_hub)"
        )
    if isinstance(e, hfe.HFValidationError):
        return WeightsError(f"{repo_id!r} is not a valid Hub repo id ({e}); use 'org/name'")
    if isinstance(e, hfe.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", "?")
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = "pass a valid token=... (or run `hf auth login`)" if status in (401, 403) else "try again later"
        return WeightsError(f"{where}: the Hub answered HTTP {status} for {filename} ({first}); {hint}")
    if isinstance(e, OSError):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return WeightsError(f"{where}: downloading {filename} failed ({first}); run again to retry the download")
    return WeightsError(f"{where}: could not get {filename} ({type(e).__name__}: {e})")


# ---------------------------------------------------------------------------------------- saving
def _torch_net(refiner: Any) -> Any:
    net = getattr(refiner, "net", None)
    if net is None:
        raise ValueError(
            "this refiner has no torch network to save (backend is not 'torch'); load it with backend='torch'"
        )
    return getattr(net, "_orig_mod", net)  # unwrap torch.compile


def save_pretrained(
    refiner: Any,
    folder: PathLike,
    *,
    overwrite: bool = False,
    repo_id: Optional[str] = None,
    card: Optional[str] = None,
) -> Path:
    """Write ``model.safetensors``, ``config.json`` and a model card ``README.md`` to ``folder``.

    A non-empty folder is refused; ``overwrite=True`` replaces an earlier save, but a folder holding
    anything else (including a README.md we did not write) is always refused. ``repo_id`` only
    names the repo in the card's usage example. ``card``: an existing model card whose text is kept
    (e.g. a packaged model's, with its training data, held-out results and terms); its metadata is
    written afresh. Returns the folder.
    """
    net = _torch_net(refiner)
    folder = Path(folder)
    readme = folder / "README.md"
    if readme.is_file() and CARD_MARKER not in readme.read_text(errors="replace"):
        raise FileExistsError(f"{readme} exists and was not written by alpharefine-sdk; save into an empty folder")
    save_model_folder(net, refiner.config, folder, overwrite=overwrite)
    text = render_model_card(
        refiner.config,
        repo_id=repo_id,
        weights_sha256=file_sha256(folder / WEIGHTS_NAME),
        num_parameters=sum(p.numel() for p in net.parameters()),
        body=card,
    )
    readme.write_text(text)
    return folder


# ---------------------------------------------------------------------------------------- publishing
def upload_model_folder(
    folder: PathLike,
    repo_id: str,
    *,
    revision: Optional[str] = None,
    private: Optional[bool] = None,
    token: Optional[str] = None,
    commit_message: str = "Upload alpharefine-sdk model",
    create_repo: bool = True,
) -> Any:
    """Upload a folder written by :func:`save_pretrained` to ``repo_id`` (branch ``revision``).

    Returns ``huggingface_hub``'s ``CommitInfo`` (``.oid`` is the new commit).
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise WeightsError(f"{folder} has no {name}; write it with save_pretrained (or the convert command) first")
    s = _publish_settings(repo_id)
    api = HfApi(endpoint=s.endpoint, token=token, library_name=LIBRARY_NAME, library_version=__version__)
    target = f"Hub repo {repo_id!r} at {s.endpoint}"
    try:
        if create_repo:
            api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=commit_message,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, "README.md"],
        )
    except Exception as e:
        raise _upload_error(e, target, create_repo) from None


def _publish_settings(repo_id: str) -> HubSettings:
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id):
        raise WeightsError(f"repo_id must look like 'org/name' (letters, digits, '-', '_', '.'); got {repo_id!r}")
    s = hub_settings()
    if s.offline:
        raise WeightsError(
            "publishing needs the network but offline mode is on (HF_HUB_OFFLINE=1); unset it to publish"
        )
    return s


def _upload_error(e: Exception, target: str, create_repo: bool) -> WeightsError:
    from huggingface_hub import errors as hfe

    if isinstance(e, hfe.RepositoryNotFoundError):
        hint = (
            "create it first or pass create_repo=True"
            if not create_repo
            else "check the repo id and that your token may write to it"
        )
        return WeightsError(f"{target} not found: {hint}")
    if isinstance(e, hfe.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", "?")
        if status in (401, 403):
            return WeightsError(
                f"{target}: not allowed to write (HTTP {status}); pass token=... with write access or run `hf auth login`"
            )
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return WeightsError(f"{target}: upload failed with HTTP {status} ({first})")
    if isinstance(e, (OSError, ValueError)):
        return WeightsError(f"{target}: upload failed ({type(e).__name__}: {e})")
    return WeightsError(f"{target}: upload failed ({type(e).__name__}: {e})")


def push_to_hub(
    refiner: Any,
    repo_id: str,
    *,
    revision: Optional[str] = None,
    private: Optional[bool] = None,
    token: Optional[str] = None,
    commit_message: str = "Upload alpharefine-sdk model",
    create_repo: bool = True,
) -> Any:
    """Publish the refiner's weights: :func:`save_pretrained` into a temporary folder, then
    ``HfApi.create_repo`` (``create_repo=True``) and ``upload_folder``. Returns the ``CommitInfo``."""
    _publish_settings(repo_id)  # fail before writing anything
    with tempfile.TemporaryDirectory(prefix="alpharefine-push-") as tmp:
        folder = save_pretrained(refiner, Path(tmp) / "model", repo_id=repo_id)
        return upload_model_folder(
            folder,
            repo_id,
            revision=revision,
            private=private,
            token=token,
            commit_message=commit_message,
            create_repo=create_repo,
        )
