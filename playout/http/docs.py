"""``/docs``: the API reference, rendered by the station itself from its OpenAPI schema.

FastAPI's own page loads Swagger UI from a CDN, which a ward Pi on a LAN without Internet cannot reach,
and the one bundle of Swagger UI on PyPI (swagger-ui-bundle 1.1.0, Swagger UI 4.15) cannot render the
OpenAPI 3.1 documents FastAPI writes.  So the station serves a plain HTML page: every route with its
method, summary, the role it needs, its parameters, request body and answers, readable on a phone and
with nothing loaded from elsewhere.  Programs read ``/openapi.json`` as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment

METHODS = ("get", "post", "put", "patch", "delete")
WHERE = {"path": "đường dẫn", "query": "truy vấn", "header": "tiêu đề"}


def _schema_text(schema: dict[str, Any] | None, components: dict[str, Any]) -> str:
    """A short human description of a parameter's schema ("số nguyên ≥ 1", "chuỗi, tối đa 64 ký tự")."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " hoặc ".join(t for t in (_schema_text(s, components) for s in schema["anyOf"]) if t)
    kind = {
        "integer": "số nguyên",
        "number": "số",
        "string": "chuỗi",
        "boolean": "đúng/sai",
        "array": "danh sách",
        "object": "đối tượng",
        "null": "không có",
    }.get(schema.get("type", ""), schema.get("type", ""))
    bits = [kind] if kind else []
    if "enum" in schema:
        bits.append("một trong: " + ", ".join(str(v) for v in schema["enum"]))
    if schema.get("format") in ("date", "date-time"):
        bits.append("ngày" if schema["format"] == "date" else "thời điểm ISO 8601")
    for key, word in (("minimum", "≥"), ("maximum", "≤")):
        if key in schema:
            bits.append(f"{word} {schema[key]}")
    if "maxLength" in schema:
        bits.append(f"tối đa {schema['maxLength']} ký tự")
    if "default" in schema and schema["default"] is not None:
        bits.append(f"mặc định {schema['default']}")
    return ", ".join(bits)


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    components = spec.get("components", {})
    out = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                {
                    "name": p["name"],
                    "where": WHERE.get(p["in"], p["in"]),
                    "required": p.get("required", False),
                    "schema": _schema_text(p.get("schema"), components),
                    "description": p.get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            body = list((op.get("requestBody") or {}).get("content", {}))
            answers = [
                {"status": code, "description": r.get("description", ""), "types": list(r.get("content", {}))}
                for code, r in sorted(op.get("responses", {}).items())
            ]
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "params": params,
                    "body": body,
                    "answers": answers,
                    "anchor": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", ""),
                }
            )
    return out


def install(app: FastAPI, env: Environment) -> None:
    template = env.get_template("docs.html")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        spec = app.openapi()
        return HTMLResponse(template.render(spec=spec, operations=operations(spec)))
