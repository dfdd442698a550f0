"""Atomic checkpoint files loaded with ``torch.load(weights_only=True)``, and verified checkpoint folders.

``save_checkpoint`` / ``load_checkpoint`` write and read one file atomically;
``CheckpointStore`` keeps a run's periodic checkpoints as sealed folders
with a manifest of sizes and hashes, and finds the newest intact one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Writes ``state`` to ``path`` atomically: a temp file in the same folder, fsync, rename.

    A crash mid-write leaves the previous checkpoint intact. ``state`` may hold
    tensors, numpy arrays and plain Python containers and scalars.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a checkpoint written by ``save_checkpoint`` without executing pickled code.

    Raises ``CheckpointError`` naming the file when it cannot be read (torch's
    own message, e.g. a damaged zip archive; never its advice to load with
    ``weights_only=False``, which would run code from the file).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # noqa: BLE001 - torch raises several types for a damaged file.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path} cannot be loaded: {type(error).__name__}: {first_line}") from None


class CheckpointError(RuntimeError):
    """A checkpoint file or folder cannot be used (damaged, or none intact); the message names it."""


#: The manifest of a checkpoint folder: every file's size and SHA-256, written last.
MANIFEST_FILE = "manifest.json"
#: Checkpoint folders are ``<root>/ckpt-<step, 12 digits>``; the staging folder of one being written starts with a dot.
CHECKPOINT_PREFIX = "ckpt-"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore:
    """Numbered, verified checkpoint folders under ``root``, the newest ``keep_last`` kept.

    Writing one: ``staging = store.begin(step)`` gives an empty folder
    (``root/.staging-...``); the caller writes its files there (any number,
    any names: learner state, replay, run state); ``store.commit(staging,
    step, info)`` fsyncs them, records each file's size and SHA-256 in
    ``manifest.json`` (with ``info``), and renames the folder to
    ``root/ckpt-<step>`` in one atomic step, so a crash leaves either the
    whole checkpoint or only a staging folder that nothing reads. Then all
    but the newest ``keep_last`` checkpoints are deleted.

    Reading: ``latest_intact()`` walks the checkpoints newest first and
    returns the first whose files all match the manifest, with the reasons
    the newer ones were skipped (a missing or unreadable manifest, a missing
    file, a size or hash that differs: a torn write, a truncated copy,
    flipped bytes), so a damaged newest checkpoint falls back to the one
    before it instead of failing, or loading wrong weights.
    """

    def __init__(self, root: str | os.PathLike, keep_last: int = 3) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.root = Path(root)
        self.keep_last = int(keep_last)

    def begin(self, step: int) -> Path:
        """A new, empty staging folder for the checkpoint of ``step``."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.root, prefix=f".staging-{int(step)}-"))

    def commit(self, staging: Path, step: int, info: Mapping[str, Any] | None = None) -> Path:
        """Seals ``staging`` as the checkpoint of ``step`` (see the class docstring); returns its folder."""
        files = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            files[str(path.relative_to(staging))] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        manifest = {"step": int(step), "files": files, "info": dict(info or {})}
        with open(staging / MANIFEST_FILE, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        final = self.root / f"{CHECKPOINT_PREFIX}{int(step):012d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_directory(self.root)
        for old in self.checkpoints()[self.keep_last:]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def checkpoints(self) -> list[Path]:
        """Sealed checkpoint folders, newest (highest step) first."""
        if not self.root.is_dir():
            return []
        return sorted((p for p in self.root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)),
                      key=lambda p: p.name, reverse=True)

    @staticmethod
    def verify(folder: Path) -> str | None:
        """None when every file of ``folder`` matches its manifest, else what is wrong (one line)."""
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
            files = manifest["files"]
        except FileNotFoundError:
            return "no manifest.json (the checkpoint was not sealed)"
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"unreadable manifest.json ({error})"
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            size = path.stat().st_size
            if size != expected["size"]:
                return f"{name} has {size} bytes, the manifest says {expected['size']} (a torn or truncated file)"
            if _sha256(path) != expected["sha256"]:
                return f"{name} does not match its SHA-256 in the manifest (the file changed after it was written)"
        return None

    def latest_intact(self) -> tuple[Path | None, list[tuple[Path, str]]]:
        """``(the newest checkpoint whose files match their manifest or None, [(skipped folder, why)])``."""
        skipped = []
        for folder in self.checkpoints():
            problem = self.verify(folder)
            if problem is None:
                return folder, skipped
            skipped.append((folder, problem))
        return None, skipped

    @staticmethod
    def info(folder: Path) -> dict[str, Any]:
        """The ``info`` a checkpoint was committed with, and its ``step``."""
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        return {"step": manifest["step"], **manifest.get("info", {})}
