"""Content identities: file checksums, the code identity and artifact version ids.

A version id names *what went into* an artifact (input checksums, the params that reached
its rule, the code), so a rerun that changes none of them reproduces the same id and a
change to any one of them yields a new id.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import urbaneo
from urbaneo.inventory import sha256_file  # the project's one file hasher, part of this API too

_PACKAGE_DIR = Path(urbaneo.__file__).resolve().parent
# Workflow files that shape artifacts (the rules); report captions do not.
_WORKFLOW_GLOBS = ("Snakefile", "workflow/rules/*.smk")
VERSION_ID_LENGTH = 16


def sha256_tree(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, or of a folder as its sorted (relative path, file sha256) pairs."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def multihash_sha256(path: str | os.PathLike) -> str:
    """The STAC file extension's ``file:checksum``: multihash hex (0x12 sha2-256, 0x20 bytes)."""
    return to_multihash(sha256_file(path))


def to_multihash(sha256_hex: str) -> str:
    return "1220" + sha256_hex


def _repo_root() -> Path | None:
    """The source checkout holding the package (src layout), if the package runs from one."""
    root = _PACKAGE_DIR.parent.parent
    return root if (root / "Snakefile").is_file() else None


def _git_commit(root: Path) -> str:
    """HEAD's commit, read from .git itself (no git binary, no subprocess); 'unknown' if absent."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: ".git" is a "gitdir: <path>" pointer
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head  # detached HEAD
        ref = head.split(":", 1)[1].strip()
        common = git / "commondir"
        common = (git / common.read_text().strip()).resolve() if common.is_file() else git
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError):
        pass
    return "unknown"


def _source_files() -> list[tuple[str, Path]]:
    files = [(f"src/urbaneo/{p.relative_to(_PACKAGE_DIR).as_posix()}", p)
             for p in [*_PACKAGE_DIR.rglob("*.py"), *_PACKAGE_DIR.glob("schemas/*.yaml")] if "__pycache__" not in p.parts]
    root = _repo_root()
    if root is not None:
        files += [(p.relative_to(root).as_posix(), p)
                  for pattern in _WORKFLOW_GLOBS for p in root.glob(pattern) if p.is_file()]
    return sorted(files)


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The code that makes artifacts: package version, a hash of its sources, the git commit.

    ``source_sha256`` (every src/urbaneo/**/*.py plus the Snakefile, rules and config schemas)
    is the code's identity: a commit that touches no code leaves it, and so every version id,
    unchanged. The commit is kept as information only.
    """
    digest = hashlib.sha256()
    for rel, path in _source_files():
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    root = _repo_root()
    return {
        "package": "urbaneo",
        "version": urbaneo.__version__,
        "source_sha256": digest.hexdigest(),
        "git_commit": _git_commit(root) if root is not None else "unknown",
    }


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace; paths and dates as their str."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def version_id(input_checksums: Mapping, params: Mapping, code: str) -> str:
    """Short hex id of (input checksums, params, code); dict order does not matter."""
    text = canonical_json({"inputs": input_checksums, "params": params, "code": code})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_ID_LENGTH]
