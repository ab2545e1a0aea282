"""An in-memory Elasticsearch at the HTTP boundary: the real client and helpers talk to it unchanged.

`ElasticsearchNodeDouble` replaces the transport's HTTP node (elastic_transport `BaseNode`), so request
building, `helpers.streaming_bulk` chunking/retries and response parsing are the real code paths. It answers
`_bulk` in the real response format (per-item `status`, `result`, `error.type`/`error.reason`, top-level
`errors`), enforces a strict mapping the way Elasticsearch does, and can be told to refuse given documents.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch

_INTEGER_RANGES = {"short": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass
class ClusterDouble:
    """State shared by every node of one double client; tests inspect and steer it."""

    indices: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # doc id -> (status, error type, reason) answered for that document's next `times` bulk items.
    refuse: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    refuse_times: dict[str, int] = field(default_factory=dict)

    def docs(self, name: str) -> dict[str, dict[str, Any]]:
        return self.indices[self.resolve(name)]["docs"]

    def resolve(self, name: str) -> str:
        targets = self.aliases.get(name)
        if targets:
            if len(targets) != 1:
                raise ValueError(f"alias [{name}] has more than one index")
            return next(iter(targets))
        return name


def client_double(cluster: ClusterDouble) -> Elasticsearch:
    """A real `Elasticsearch` client whose only HTTP node is the double bound to `cluster`."""
    node_class = type("BoundElasticsearchNodeDouble", (ElasticsearchNodeDouble,), {"cluster": cluster})
    return Elasticsearch("http://es-double:9200", node_class=node_class)


class ElasticsearchNodeDouble(BaseNode):
    _CLIENT_META_HTTP_CLIENT = ("double", "1")
    cluster: ClusterDouble

    def perform_request(
        self, method: str, target: str, body: bytes | None = None, headers: Any = None, request_timeout: Any = None
    ) -> NodeApiResponse:
        path = unquote(urlsplit(target).path)
        self.cluster.requests.append((method, path))
        status, payload = self._route(method, [p for p in path.split("/") if p], body or b"")
        meta = ApiResponseMeta(
            status=status,
            http_version="1.1",
            duration=0.0,
            node=self.config,
            headers=HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"}),
        )
        return NodeApiResponse(meta, b"" if method == "HEAD" else json.dumps(payload).encode())

    def _route(self, method: str, parts: list[str], body: bytes) -> tuple[int, Any]:
        if parts == ["_bulk"]:
            return 200, self._bulk(body)
        if parts == ["_aliases"]:
            return self._update_aliases(json.loads(body)["actions"])
        if parts[:1] == ["_alias"]:
            return self._get_alias(parts[1])
        if len(parts) == 2 and parts[1] == "_refresh":
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if len(parts) == 2 and parts[1] == "_search":
            return 200, self._search(parts[0], json.loads(body))
        if len(parts) == 1 and method == "PUT":
            return self._create(parts[0], json.loads(body))
        if len(parts) == 1 and method == "DELETE":
            self.cluster.indices.pop(parts[0], None)
            return 200, {"acknowledged": True}
        return 400, _error("illegal_argument_exception", f"double does not know {method} /{'/'.join(parts)}", 400)

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.cluster.indices:
            return 400, _error("resource_already_exists_exception", f"index [{name}] already exists", 400)
        self.cluster.indices[name] = {"mappings": body.get("mappings", {}), "docs": {}}
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _get_alias(self, alias: str) -> tuple[int, Any]:
        targets = self.cluster.aliases.get(alias)
        if not targets:
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, {name: {"aliases": {alias: {}}} for name in sorted(targets)}

    def _update_aliases(self, actions: list[dict[str, Any]]) -> tuple[int, Any]:
        for action in actions:
            ((kind, spec),) = action.items()
            targets = self.cluster.aliases.setdefault(spec["alias"], set())
            (targets.add if kind == "add" else targets.discard)(spec["index"])
        return 200, {"acknowledged": True}

    def _bulk(self, body: bytes) -> dict[str, Any]:
        started = time.monotonic()
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        items, i = [], 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            source = lines[i + 1] if op in ("index", "create", "update") else None
            i += 2 if source is not None else 1
            items.append({op: self._bulk_item(op, meta, source)})
        errors = any(not 200 <= next(iter(item.values()))["status"] < 300 for item in items)
        return {"errors": errors, "took": int((time.monotonic() - started) * 1000), "items": items}

    def _bulk_item(self, op: str, meta: dict[str, Any], source: dict[str, Any] | None) -> dict[str, Any]:
        doc_id = meta["_id"]
        name = self.cluster.resolve(meta["_index"])
        head = {"_index": name, "_id": doc_id}
        refused = self._refusal(doc_id)
        if refused:
            status, kind, reason = refused
            return {**head, "status": status, "error": {"type": kind, "reason": reason, "index": name}}
        if name not in self.cluster.indices:
            return {
                **head,
                "status": 404,
                "error": {"type": "index_not_found_exception", "reason": f"no such index [{name}]", "index": name},
            }
        docs = self.cluster.indices[name]["docs"]
        if op == "delete":
            found = docs.pop(doc_id, None) is not None
            return {
                **head,
                "_version": 2,
                "result": "deleted" if found else "not_found",
                "status": 200 if found else 404,
                "_shards": {"total": 1, "successful": 1, "failed": 0},
            }
        problem = _mapping_problem(self.cluster.indices[name]["mappings"], source or {}, doc_id)
        if problem:
            return {**head, "status": 400, "error": problem}
        created = doc_id not in docs
        docs[doc_id] = source
        return {
            **head,
            "_version": 1,
            "result": "created" if created else "updated",
            "status": 201 if created else 200,
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_seq_no": len(docs),
            "_primary_term": 1,
        }

    def _refusal(self, doc_id: str) -> tuple[int, str, str] | None:
        if doc_id not in self.cluster.refuse:
            return None
        left = self.cluster.refuse_times.get(doc_id, 1_000_000)
        if left <= 0:
            return None
        self.cluster.refuse_times[doc_id] = left - 1
        return self.cluster.refuse[doc_id]

    def _search(self, alias: str, body: dict[str, Any]) -> dict[str, Any]:
        words = body["query"]["bool"]["must"]["simple_query_string"]["query"].lower().split()
        scored = []
        for doc_id, source in self.cluster.docs(alias).items():
            title, abstract = (source.get("title") or "").lower(), (source.get("abstract") or "").lower()
            if source.get("is_canonical") and all(w in title or w in abstract for w in words):
                score = sum(4.0 * (w in title) + 1.0 * (w in abstract) for w in words)
                scored.append((score, doc_id, source))
        scored.sort(key=lambda s: (-s[0], s[1]))
        hits = [
            {
                "_index": alias,
                "_id": d,
                "_score": s,
                "_source": src,
                "highlight": {"abstract": [src.get("abstract") or ""]},
            }
            for s, d, src in scored[: body["size"]]
        ]
        return {
            "took": 1,
            "timed_out": False,
            "hits": {
                "total": {"value": len(scored), "relation": "eq"},
                "max_score": hits[0]["_score"] if hits else None,
                "hits": hits,
            },
        }


def _mapping_problem(mappings: dict[str, Any], source: dict[str, Any], doc_id: str) -> dict[str, Any] | None:
    properties = mappings.get("properties", {})
    for key, value in source.items():
        if key not in properties and mappings.get("dynamic") == "strict":
            return {
                "type": "strict_dynamic_mapping_exception",
                "reason": f"[1:2] mapping set to strict, dynamic introduction of [{key}] within [_doc] is not allowed",
            }
        kind = properties.get(key, {}).get("type")
        low, high = _INTEGER_RANGES.get(kind, (None, None))
        if low is not None and value is not None and not (isinstance(value, int) and low <= value <= high):
            return {
                "type": "document_parsing_exception",
                "reason": f"[1:2] failed to parse field [{key}] of type [{kind}] in document with id '{doc_id}'."
                f" Preview of field's value: '{value}'",
                "caused_by": {
                    "type": "illegal_argument_exception",
                    "reason": f"Value [{value}] is out of range for a {kind}",
                },
            }
    return None


def _error(kind: str, reason: str, status: int) -> dict[str, Any]:
    return {
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status,
    }
