"""Turn the portal's plain HTML forms into workflow requests.

The forms are built in the templates (one field per scoring point); the CSRF token comes
from Flask-WTF's CSRFProtect, so no WTForms classes are needed for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from werkzeug.datastructures import MultiDict

from workflow.actions import TransitionRequest
from workflow.errors import BadRequest
from workflow.models import ScoringPoint

SCORING_ACTIONS = ("score", "rescore")


def form_version(form: Mapping[str, str]) -> int:
    """Return the item version the form was built from."""
    raw = (form.get("version") or "").strip()
    if not raw.isdecimal():
        raise BadRequest("表单缺少事项版本号，请刷新页面后重试", code="version_required")
    return int(raw)


def form_seen(form: Mapping[str, str]) -> str | None:
    """Return the fingerprint of what the form showed when it was opened (`seen`), if any:
    the engine refuses the save when the values it edits changed since
    (`workflow.fingerprints`)."""
    return (form.get("seen") or "").strip() or None


def transition_from_form(
    action: str, form: MultiDict[str, str], points: Sequence[ScoringPoint]
) -> TransitionRequest:
    """Build the workflow request of `action` from a posted form."""
    req = TransitionRequest(action=action, version=form_version(form))
    req.comment = (form.get("comment") or "").strip() or None
    if action in SCORING_ACTIONS:
        scores: dict[str, str] = {}
        deductions: dict[str, str] = {}
        for p in points:
            value = (form.get(f"score-{p.code}") or "").strip()
            if value:
                scores[p.code] = value
            reason = (form.get(f"reason-{p.code}") or "").strip()
            if reason:
                deductions[p.code] = reason
        req.scores, req.deductions = scores, deductions
    if action == "submit":
        req.not_involved = [c for c in form.getlist("not_involved") if c]
        req.change_note = (form.get("change_note") or "").strip() or None
    if action == "verify":
        rulings: dict[str, bool] = {}
        for p in points:
            ruling = form.get(f"ruling-{p.code}")
            if ruling in ("uphold", "reject"):
                rulings[p.code] = ruling == "uphold"
        req.rulings = rulings
        # The checklist: check-<code> is yes/no/na, check-note-<code> the optional note.
        req.checks = {
            key.removeprefix("check-"): {
                "answer": form.get(key),
                "note": (form.get(f"check-note-{key.removeprefix('check-')}") or "").strip()
                or None,
            }
            for key in form
            if key.startswith("check-") and not key.startswith("check-note-") and form.get(key)
        }
    return req
