"""The generated OpenAPI document and a plain HTML rendering of it (no CDN, no script)."""

from __future__ import annotations

from flask import Response, render_template_string

from web.api.blueprint import bp
from web.api.common import json_response
from web.api.contract import File, contract, openapi_document

DOCS_TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ doc.info.title }}</title>
</head><body>
<h1>{{ doc.info.title }} <small>{{ doc.info.version }}</small></h1>
<p>{{ doc.info.description }}</p>
<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI {{ doc.openapi }}).</p>
{% for path, ops in doc.paths.items() %}{% for method, op in ops.items() %}
<section id="{{ method }}-{{ path }}">
<h2>{{ method|upper }} <code>{{ path }}</code></h2>
<p>{{ op.summary }}{% if not op.security %} — no token needed{% endif %}</p>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table border="1">
<tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td>
<td><code>{{ p.schema|tojson }}</code></td><td>{{ p.description }}</td></tr>{% endfor %}
</table>{% endif %}
{% if op.requestBody %}<p>Body: {% for ct, media in op.requestBody.content.items() %}
<code>{{ ct }}</code> <code>{{ media.schema|tojson }}</code>{% endfor %}</p>{% endif %}
<table border="1"><tr><th>status</th><th>meaning</th></tr>
{% for code, r in op.responses.items() %}<tr><td>{{ code }}</td><td>{{ r.description }}</td></tr>
{% endfor %}</table></section>{% endfor %}{% endfor %}
<h2>Schemas</h2>
{% for name, schema in doc.components.schemas.items() %}
<section id="schema-{{ name }}"><h3>{{ name }}</h3>
<pre>{{ schema|tojson(indent=1) }}</pre></section>
{% endfor %}
</body></html>"""


@bp.get("/openapi.json")
@contract("meta", ok={200: File("application/json", "OpenAPI 3.1")}, public=True)
def openapi_json() -> Response:
    """This document (OpenAPI 3.1), generated from the declared models."""
    return json_response(openapi_document())


@bp.get("/docs")
@contract("meta", ok={200: File("text/html", "HTML")}, public=True)
def docs() -> Response:
    """This document for people (HTML)."""
    html = render_template_string(DOCS_TEMPLATE, doc=openapi_document())
    return Response(html, content_type="text/html; charset=utf-8")
