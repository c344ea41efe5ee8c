"""The 公示 page: the results while publication runs, the appeal deadline and how to appeal.

Public, or for signed-in users only (an assessment setting). Outside the publication window
it says so and shows no figures, so nothing leaks before publication.

Two years may be on public view at once (last year's window still open when this year's
results are published; the banner names both): the page shows the newest, and `?year=` and
its year switch the other; each banner links to its year's page.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from web.clock import request_now
from web.db import get_db
from web.portal.auth import login_manager
from web.portal.common import asked_assessment, asked_year, publication_assessment
from web.portal.deadlines import running_publications
from workflow.assessments import assessment_status, results_of

bp = Blueprint("publication", __name__, url_prefix="/publication")


@bp.get("/")
def page() -> ResponseReturnValue:
    """Show the results whose publication window runs now (else the latest assessment's
    state), printable; `?year=` another year's (its figures only while its window runs)."""
    db = get_db()
    now = request_now()
    assessment = asked_assessment(db) if asked_year() is not None else None
    assessment = assessment or publication_assessment(db, now)
    if (
        assessment is not None
        and assessment.publication_page == "signed_in"
        and not current_user.is_authenticated
    ):
        return login_manager.unauthorized()
    status = assessment_status(assessment, now) if assessment is not None else None
    rows = results_of(db, assessment) if assessment is not None and status == "published" else []
    return render_template(
        "publication/page.html",
        assessment=assessment,
        status=status,
        rows=rows,
        # The names the 汇总表 and the notices print: 政府办（民族宗教局、法制办）, not 政府办.
        full_names={d.id: d.full_name or d.name for d in assessment.departments}
        if rows and assessment is not None
        else {},
        years=[p.year for p in running_publications()],
    )
