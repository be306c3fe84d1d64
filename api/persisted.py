"""Automatic persisted queries (Apollo's APQ protocol, version 1).

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` instead
of the document; a hash the process does not know is answered `PersistedQueryNotFound`, and
the client sends the document again with the hash, which registers it once sha256(query)
equals the hash. Short GET URLs that a CDN can key on are the point.

The store is per process and bounded (least recently used out, by count and by total
characters), so a flood of registrations only evicts: a client whose hash was evicted just
registers it again. Only hashes that were checked against their document get in.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

NOT_FOUND = "PersistedQueryNotFound"
NOT_FOUND_CODE = "PERSISTED_QUERY_NOT_FOUND"
BAD_REQUEST_CODE = "PERSISTED_QUERY_INVALID"
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class PersistedQueryError(Exception):
    """A malformed persistedQuery extension or a document that does not match its hash
    (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PersistedRef:
    sha256: str  # lowercase hex


def persisted_ref(extensions: object) -> PersistedRef | None:
    """The persistedQuery extension of a request, checked; None when there is none."""
    if extensions is None:
        return None
    if not isinstance(extensions, dict):
        raise PersistedQueryError("extensions must be a JSON object")
    pq = extensions.get("persistedQuery")
    if pq is None:
        return None
    if not isinstance(pq, dict):
        raise PersistedQueryError(
            'extensions.persistedQuery must be an object: {"version": 1, "sha256Hash": "..."}'
        )
    if pq.get("version") != 1:
        raise PersistedQueryError("extensions.persistedQuery.version must be 1")
    digest = pq.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise PersistedQueryError(
            "extensions.persistedQuery.sha256Hash must be 64 hex digits (sha256 of the query)"
        )
    return PersistedRef(digest.lower())


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


class PersistedQueries:
    """hash -> document, least recently used out past `max_entries` or `max_chars`."""

    def __init__(self, max_entries: int = 5000, max_chars: int = 16 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._docs: OrderedDict[str, str] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, digest: str) -> str | None:
        query = self._docs.get(digest)
        if query is not None:
            self._docs.move_to_end(digest)
        return query

    def register(self, digest: str, query: str) -> None:
        """Keep `query` under `digest`; refused (PersistedQueryError) unless it is its
        sha256."""
        if sha256_hex(query) != digest:
            raise PersistedQueryError(
                "provided sha256Hash does not match the query: it must be the lowercase hex "
                "sha256 of the query string exactly as sent"
            )
        if digest in self._docs:
            self._docs.move_to_end(digest)
            return
        if len(query) > self.max_chars:
            return
        self._docs[digest] = query
        self._chars += len(query)
        while len(self._docs) > self.max_entries or self._chars > self.max_chars:
            _, old = self._docs.popitem(last=False)
            self._chars -= len(old)

    def resolve(self, ref: PersistedRef, query: str | None) -> str | None:
        """The document to run: the one sent (registered on the way), else the stored one;
        None for a hash miss without a document."""
        if query is not None:
            self.register(ref.sha256, query)
            return query
        return self.get(ref.sha256)
