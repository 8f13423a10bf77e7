"""The HTML class report (``report.html``) and one feedback page per learner.

The report shows where the class struggles: each exercise's mean score and how many
learners passed it, every test's pass rate (lowest first), the distribution of totals,
the learners' table with links to their feedback, the identical submissions, and, after
a re-grade, who moved. Everything a learner wrote is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from grader.classroom.gradebook import LEARNERS_DIR, Gradebook, _atomic_write
from grader.classroom.plan import Plan

REPORT_FILE = "report.html"
MESSAGE_CHARS = 3000

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left}th{background:#f3f3f3}.num{text-align:right}.bar{background:#4a7;height:.8rem}
.low{color:#b00}.pass{color:#070}.fail{color:#b00}pre{white-space:pre-wrap;background:#f7f7f7;
padding:.5rem;max-height:20rem;overflow:auto}.muted{color:#777}
"""

_REPORT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Class report</title>
<style>{{ style }}</style></head><body>
<h1>Class report</h1>
<p>{{ book.rows|length }} learners · {{ graded }} graded · course version
<code>{{ book.course_version }}</code> · {{ book.generated_at }}
{% if book.only %}· exercises: {{ book.only|join(", ") }}{% endif %}</p>

{% if book.previous_course_version %}
<h2>Who moved since the last grading</h2>
<p>Previous course version <code>{{ book.previous_course_version }}</code>{%
 if book.previous_course_version != book.course_version %} → <code>{{ book.course_version
 }}</code> (the suites or the grader changed){% else %} (same course version){% endif %}.</p>
{% if book.moved %}<table><tr><th>learner</th><th class="num">before</th>
<th class="num">after</th><th class="num">change</th></tr>
{% for m in book.moved %}<tr><td>{{ m.learner }}</td><td class="num">{{ m.before }}</td>
<td class="num">{{ m.after }}</td><td class="num {{ 'fail' if m.delta < 0 else 'pass' }}">{{
 '%+d'|format(m.delta) }}</td></tr>{% endfor %}</table>
{% else %}<p>Nobody's total changed.</p>{% endif %}
{% endif %}

<h2>Exercises</h2>
<table><tr><th>exercise</th><th class="num">max</th><th class="num">mean</th>
<th class="num">passed by</th></tr>
{% for e in exercises %}<tr><td>{{ e.id }}</td><td class="num">{{ e.max_points }}</td>
<td class="num">{{ '%.1f'|format(e.mean) }}</td><td class="num">{{ e.passed }} / {{ graded }}
({{ '%.0f'|format(e.rate) }}%)</td></tr>{% endfor %}</table>

<h2>Distribution of totals</h2>
<table>{% for b in bins %}<tr><td>{{ b.label }}</td><td class="num">{{ b.count }}</td>
<td style="width:20rem"><div class="bar" style="width:{{ b.width }}%"></div></td></tr>
{% endfor %}</table>

<h2>Tests, lowest pass rate first</h2>
<table><tr><th>test</th><th class="num">pass rate</th><th class="num">passed</th></tr>
{% for t in tests %}<tr><td>{{ t.name }}</td><td class="num {{ 'low' if t.rate < 50 else '' }}">{{
 '%.0f'|format(t.rate) }}%</td><td class="num">{{ t.passed }} / {{ t.count }}</td></tr>
{% endfor %}</table>

{% if identical %}<h2>Identical submissions</h2>
<p class="muted">The same files, byte for byte (a hint, not a verdict).</p><ul>
{% for group in identical %}<li>{{ group|join(", ") }}</li>{% endfor %}</ul>{% endif %}

<h2>Learners</h2>
<table><tr><th>learner</th><th class="num">total</th><th class="num">%</th>
{% for e in book.exercises %}<th class="num">{{ e }}</th>{% endfor %}
<th>status</th><th>commit</th><th>graded at</th></tr>
{% for r in book.rows %}<tr><td><a href="{{ r.feedback }}">{{ r.learner }}</a></td>
<td class="num">{{ r.total }} / {{ r.max_points }}</td><td class="num">{{ r.percent }}</td>
{% for e in book.exercises %}<td class="num">{{ r.points[e] }}</td>{% endfor %}
<td>{{ r.status }}{% if r.message %} <span class="muted">{{ r.message[:120] }}</span>{% endif
 %}</td><td><code>{{ r.commit[:10] }}</code></td><td>{{ r.graded_at }}</td></tr>
{% endfor %}</table>
</body></html>
"""

_FEEDBACK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ row.learner }}: feedback</title>
<style>{{ style }}</style></head><body>
<p><a href="../../report.html">← class report</a></p>
<h1>{{ row.learner }}</h1>
<p>{{ row.total }} / {{ row.max_points }} points ({{ row.percent }}%) · status {{ row.status }}
{% if row.commit %}· commit <code>{{ row.commit }}</code>{% endif %}
{% if row.graded_at %}· graded at {{ row.graded_at }}{% endif %}</p>
{% if row.message %}<pre>{{ row.message }}</pre>{% endif %}
{% if row.identical_to %}<p class="muted">Identical to: {{ row.identical_to|join(", ") }}</p>
{% endif %}
{% if results %}
<table><tr><th>exercise</th><th>status</th><th class="num">points</th></tr>
{% for e in results.exercises %}<tr><td>{{ e.id }}</td><td>{{ e.status }}</td>
<td class="num">{{ e.points }} / {{ e.max_points }}</td></tr>{% endfor %}</table>
<h2>Tests</h2>
{% for t in results.tests %}<p class="{{ 'pass' if t.status == 'pass' else 'fail' }}">
{{ 'PASS' if t.status == 'pass' else 'FAIL' }} {{ t.name }} ({{ t.max_points }} pt)</p>
{% if t.status != 'pass' and t.message %}<pre>{{ t.message[:limit] }}</pre>{% endif %}
{% endfor %}{% endif %}
</body></html>
"""


@dataclass
class _Bin:
    label: str
    count: int
    width: float


def _environment() -> Environment:
    return Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def _results_by_learner(plan: Plan) -> dict[str, dict[str, Any]]:
    found = {}
    for submission in plan.submissions:
        results = plan.outcome_of(submission).results
        if results is not None:
            found[submission.learner] = results
    return found


def context(book: Gradebook, plan: Plan) -> dict[str, Any]:
    """What the report shows, computed (tested on its own)."""
    results = _results_by_learner(plan)
    graded = len(results)
    exercises = []
    for exercise, top in book.exercises.items():
        scores = [r.points[exercise] for r in book.rows if r.learner in results]
        passed = sum(
            1
            for learner, res in results.items()
            for e in res["exercises"]
            if e["id"] == exercise and e["status"] == "passed"
        )
        exercises.append(
            {
                "id": exercise,
                "max_points": top,
                "mean": sum(scores) / len(scores) if scores else 0.0,
                "passed": passed,
                "rate": 100 * passed / graded if graded else 0.0,
            }
        )
    passes: dict[str, list[bool]] = defaultdict(list)
    for res in results.values():
        for test in res["tests"]:
            passes[test["name"]].append(test["status"] == "pass")
    tests = sorted(
        (
            {"name": name, "passed": sum(v), "count": len(v), "rate": 100 * sum(v) / len(v)}
            for name, v in passes.items()
        ),
        key=lambda t: (t["rate"], t["name"]),
    )
    counts = [0] * 10
    for row in book.rows:
        if row.learner in results:
            counts[min(9, int(row.percent // 10))] += 1
    most = max(counts) or 1
    bins = [
        _Bin(f"{10 * i}–{10 * i + 10}%" if i < 9 else "90–100%", n, 100 * n / most)
        for i, n in enumerate(counts)
    ]
    groups: dict[str, list[str]] = {}
    for row in book.rows:
        if row.identical_to:
            groups.setdefault(row.content_hash, []).append(row.learner)
    return {
        "book": book,
        "graded": graded,
        "exercises": exercises,
        "tests": tests,
        "bins": bins,
        "identical": list(groups.values()),
        "style": _STYLE,
    }


def write(out: Path, book: Gradebook, plan: Plan) -> Path:
    """Write report.html and every learner's feedback page; returns the report's path."""
    environment = _environment()
    report = out / REPORT_FILE
    _atomic_write(report, environment.from_string(_REPORT).render(**context(book, plan)))
    results = _results_by_learner(plan)
    page = environment.from_string(_FEEDBACK)
    for submission, row in zip(plan.submissions, book.rows, strict=True):
        text = page.render(
            row=row, results=results.get(row.learner), style=_STYLE, limit=MESSAGE_CHARS
        )
        _atomic_write(out / LEARNERS_DIR / submission.slug / "feedback.html", text)
    return report
