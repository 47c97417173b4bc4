"""A small in-process server that speaks the subset of the Confluent Schema Registry REST API the
project's client uses: register a schema under a subject, fetch a schema by id.

    POST /subjects/{subject}/versions   {"schema": "...", "schemaType": "AVRO"} -> {"id": N}
    GET  /schemas/ids/{id}              -> {"schema": "..."}, or 404 {"error_code": 40403}

Ids are global, as in the real registry: one schema (compared parsed) has one id whatever the
subject. Each :meth:`RegistryServer.namespace` is an independent registry under its own path
prefix (the client joins its base URL and the API path), so one server serves many tests. A
namespace can be made to answer 503 to everything, as a registry in trouble does.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Namespace:
    schemas: list[Any] = field(default_factory=list)  # id - 1 -> parsed schema
    texts: list[str] = field(default_factory=list)
    subjects: dict[str, set[int]] = field(default_factory=dict)
    down: bool = False  # answer 503 to every request
    types: dict[int, str] = field(default_factory=dict)  # id -> schemaType, when not AVRO

    def add_foreign(self, text: str, schema_type: str | None) -> int:
        """Another team's schema in the same registry (``schema_type`` JSON, PROTOBUF, or None
        for one that says it is Avro); its id."""
        self.schemas.append(None)
        self.texts.append(text)
        if schema_type is not None:
            self.types[len(self.texts)] = schema_type
        return len(self.texts)

    def register(self, subject: str, text: str) -> int:
        parsed = json.loads(text)
        if parsed in self.schemas:
            schema_id = self.schemas.index(parsed) + 1
        else:
            self.schemas.append(parsed)
            self.texts.append(text)
            schema_id = len(self.schemas)
        self.subjects.setdefault(subject, set()).add(schema_id)
        return schema_id


class RegistryServer:
    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def namespace(self) -> tuple[str, Namespace]:
        """The base URL of a new, empty registry, and its state."""
        name = uuid.uuid4().hex
        self.namespaces[name] = Namespace()
        return f"http://127.0.0.1:{self.port}/{name}", self.namespaces[name]

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(10)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                parts = urlsplit(self.path).path.strip("/").split("/")
                namespace = server.namespaces.get(parts[0])
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                if namespace is None:
                    return self._send(404, {"error_code": 404, "message": "no such registry"})
                if namespace.down:
                    return self._send(503, {"error_code": 50003, "message": "unavailable"})
                route = parts[1:]
                with server._lock:
                    if (
                        method == "POST"
                        and len(route) == 3
                        and route[::2] == ["subjects", "versions"]
                    ):
                        schema_id = namespace.register(unquote(route[1]), body["schema"])
                        return self._send(200, {"id": schema_id})
                    if method == "GET" and route[:2] == ["schemas", "ids"] and len(route) == 3:
                        schema_id = int(route[2])
                        if 1 <= schema_id <= len(namespace.texts):
                            found = {"schema": namespace.texts[schema_id - 1]}
                            if schema_id in namespace.types:
                                found["schemaType"] = namespace.types[schema_id]
                            return self._send(200, found)
                        return self._send(404, {"error_code": 40403, "message": "Schema not found"})
                return self._send(404, {"error_code": 404, "message": f"not served: {self.path}"})

            def _send(self, status: int, document: dict[str, Any]) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
