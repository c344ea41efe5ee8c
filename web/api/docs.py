"""The OpenAPI document and a plain HTML rendering of it (no CDN, no script, no inline style)."""

from __future__ import annotations

from flask import Response, render_template_string

from web.api import bp
from web.api.common import json_response
from web.openapi import build_openapi

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
</body></html>"""


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """Return the OpenAPI 3.1 document."""
    return json_response(build_openapi())


@bp.get("/docs")
def docs() -> Response:
    """Render the OpenAPI document as a plain HTML page."""
    html = render_template_string(DOCS_TEMPLATE, doc=build_openapi())
    return Response(html, content_type="text/html; charset=utf-8")
