"""`grader verify`: prove that every suite can fail and that the course is consistent.

For every available exercise: the solution passes every test; the pristine stub fails
every test as a failure (not a harness error); the stub's public API equals the
solution's; every mutant (edit or whole file) is caught by at least one test; every
alternative correct solution passes every test; the catalog's stub hash is current; every
note link used by the catalog and the suites points at an anchor; and, where the catalog
enforces them, spec coverage (`grader.spec`) and pitfall traceability (`grader.pitfalls`).
"""

from __future__ import annotations

import ast
import importlib
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from grader import paths, pitfalls, spec, variants
from grader.catalog import Catalog, Exercise, git_blob_sha, pristine_source
from grader.results import TestResult, run_suites

ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")


@dataclass
class ExerciseVerdict:
    """What verify found for one exercise."""

    exercise: Exercise
    solution: tuple[int, int] = (0, 0)  # passed, total
    stub: tuple[int, int] = (0, 0)  # failed cleanly, total
    mutants: dict[str, list[str]] = field(default_factory=dict)  # mutant -> tests that caught it
    origins: dict[str, str] = field(default_factory=dict)  # mutant -> "edit" | "file"
    alternatives: dict[str, list[str]] = field(default_factory=dict)  # alt -> tests it failed
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # checks not enforced yet
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check held."""
        return not self.problems

    def caught(self, origin: str) -> tuple[int, int]:
        """(caught, total) of the mutants of one origin (``edit`` or ``file``)."""
        mine = [name for name, kind in self.origins.items() if kind == origin]
        return sum(bool(self.mutants.get(name)) for name in mine), len(mine)


@dataclass
class CourseVerdict:
    """What verify found beyond single exercises (the notes' pitfalls)."""

    pitfalls: dict[str, int] = field(default_factory=dict)  # note -> pitfalls found
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def public_api(source: str) -> dict[str, str]:
    """Public names of a module's source with their signatures (functions, classes, CONSTANTS)."""
    tree = ast.parse(source)
    api: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith(
            "_"
        ):
            api[node.name] = _signature(node)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            api[node.name] = _class_shape(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for name in (t.id for t in targets if isinstance(t, ast.Name)):
                if name.isupper() and not name.startswith("_") and node.value is not None:
                    api[name] = ast.unparse(node.value)
    return api


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _class_shape(node: ast.ClassDef) -> str:
    parts = [f"class {node.name}({', '.join(ast.unparse(b) for b in node.bases)})"]
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            parts.append(f"{item.target.id}: {ast.unparse(item.annotation)}")
        elif isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
            not item.name.startswith("_") or item.name == "__init__"
        ):
            parts.append(_signature(item))
    return "; ".join(parts)


def api_differences(stub: str, solution: str) -> list[str]:
    """How the stub's public API differs from the solution's (sources; empty when equal)."""
    mine, theirs = public_api(stub), public_api(solution)
    problems = []
    for name in sorted(set(mine) | set(theirs)):
        if name not in mine:
            problems.append(f"stub lacks {name!r} ({theirs[name]})")
        elif name not in theirs:
            problems.append(f"stub has {name!r} that the solution does not")
        elif mine[name] != theirs[name]:
            problems.append(
                f"{name!r} differs:\n      stub:     {mine[name]}\n      solution: {theirs[name]}"
            )
    return problems


def anchors_of(note: Path) -> set[str]:
    """Explicit anchors (``<a id="...">``) of a note."""
    return set(ANCHOR.findall(note.read_text(encoding="utf-8"))) if note.is_file() else set()


def grade_marks(exercise: Exercise) -> dict[str, dict[str, object]]:
    """Each test function of the exercise's suite with its ``grade`` marker's arguments."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(exercise.suite_module)
    found: dict[str, dict[str, object]] = {}
    for name in sorted(n for n in dir(module) if n.startswith("test_")):
        marks = [m for m in getattr(getattr(module, name), "pytestmark", []) if m.name == "grade"]
        found[name] = dict(marks[0].kwargs) if marks else {}
    return found


def suite_note_links(exercise: Exercise) -> set[str]:
    """Every note link (``file.md#anchor``) used by the exercise and its suite's tests."""
    notes = (str(kw["note"]) for kw in grade_marks(exercise).values() if kw.get("note"))
    return {exercise.note, *notes}


def unmarked_tests(exercise: Exercise) -> list[str]:
    """Tests of the exercise's suite without a full ``grade`` marker (points, note, hint)."""
    problems = []
    for name, kwargs in grade_marks(exercise).items():
        lacking = [k for k in ("points", "note", "hint") if not kwargs.get(k)]
        if lacking:
            problems.append(f"{name} lacks grade({', '.join(lacking)}): every test teaches")
    return problems


def broken_links(links: Iterable[str], notes_dir: Path | None = None) -> list[str]:
    """Links whose note or anchor does not exist."""
    folder = notes_dir or paths.NOTES_DIR
    problems = []
    for link in sorted(set(links)):
        file, _, anchor = link.partition("#")
        note = folder / file
        if not note.is_file():
            problems.append(f"note link {link}: notes/{file} does not exist")
        elif anchor and anchor not in anchors_of(note):
            problems.append(f'note link {link}: no <a id="{anchor}"> in notes/{file}')
    return problems


def _static_checks(verdict: ExerciseVerdict) -> None:
    exercise, problems = verdict.exercise, verdict.problems
    stub, solution = exercise.stub_path(), exercise.solution_path()
    if not solution.is_file():
        problems.append(f"{solution.relative_to(paths.REPO_ROOT)} is missing")
        return
    pristine = pristine_source(exercise)
    if pristine is None:
        problems.append(
            f"git has no stub with the catalog's stub_blob {exercise.stub_blob}: "
            "run `grader verify --update-hashes` and commit the stub"
        )
        return
    if not stub.is_file() or git_blob_sha(stub.read_bytes()) != exercise.stub_blob:
        verdict.notes.append(
            f"exercises/level{exercise.level}/{exercise.file} is not the pristine stub "
            "(work in progress, or a stub edited without --update-hashes); "
            "the pristine one from git was verified"
        )
    reference = solution.read_text(encoding="utf-8")
    problems += [f"API: {p}" for p in api_differences(pristine.decode("utf-8"), reference)]
    problems += broken_links(suite_note_links(exercise))
    problems += unmarked_tests(exercise)
    if exercise.spec_coverage:
        problems += [
            f"spec: {p}" for p in spec.spec_problems(pristine.decode(), grade_marks(exercise))
        ]
    else:
        verdict.warnings.append(
            "spec coverage not enforced yet: tag the stub's promises, name them in "
            "grade(spec=...), then set spec_coverage = true in the catalog"
        )
    try:
        for mutant in variants.mutants_for(exercise):
            mutant.apply((paths.SOLUTIONS_DIR / mutant.file).read_text(encoding="utf-8"))
        variants.alternatives_for(exercise)
    except variants.MutantError as error:
        problems.append(str(error))


def verify(
    catalog: Catalog,
    exercises: list[Exercise] | None = None,
) -> list[ExerciseVerdict]:
    """Run every check for the available exercises (or the given ones)."""
    chosen = [e for e in (exercises or list(catalog.exercises)) if e.available]
    verdicts = {e.id: ExerciseVerdict(e) for e in chosen}
    for verdict in verdicts.values():
        _static_checks(verdict)
    runnable = [e for e in chosen if not verdicts[e.id].problems]
    kinds = [variants.SOLUTION, variants.STUB, variants.MUTANTS, variants.ALTERNATIVES]
    by_variant: dict[tuple[str, str], list[TestResult]] = defaultdict(list)
    for result in run_suites(runnable, kinds, first_catch=True):
        by_variant[(result.exercise, result.variant)].append(result)
    for exercise in runnable:
        _judge(verdicts[exercise.id], by_variant)
    return list(verdicts.values())


def _judge(verdict: ExerciseVerdict, by_variant: dict[tuple[str, str], list[TestResult]]) -> None:
    exercise = verdict.exercise
    solution = by_variant.get((exercise.id, variants.SOLUTION), [])
    passed = [r for r in solution if r.outcome == "passed"]
    verdict.solution = (len(passed), len(solution))
    if not solution:
        verdict.problems.append("the suite collected no test")
    for result in solution:
        if result.outcome != "passed":
            first = result.message.strip().splitlines()[:3]
            verdict.problems.append(f"solution {result.outcome} {result.name}: {' / '.join(first)}")
    stub = by_variant.get((exercise.id, variants.STUB), [])
    clean = [r for r in stub if r.outcome == "failed"]
    verdict.stub = (len(clean), len(stub))
    for result in stub:
        if result.outcome == "passed":
            verdict.problems.append(f"the pristine stub passes {result.name}: the test cannot fail")
        elif result.outcome == "error":
            verdict.problems.append(f"the pristine stub errors (not fails) in {result.name}")
    for mutant in variants.mutants_for(exercise):
        name = f"mutant:{mutant.name}"
        caught = [r.name for r in by_variant.get((exercise.id, name), []) if r.outcome == "failed"]
        verdict.mutants[mutant.name] = caught
        verdict.origins[mutant.name] = mutant.origin
        if not caught:
            verdict.problems.append(
                f"{mutant.origin} mutant {mutant.name} survives: {mutant.description}"
            )
    if len(verdict.mutants) < 3:
        verdict.problems.append(f"only {len(verdict.mutants)} mutant(s); at least 3 are required")
    for alternative in variants.alternatives_for(exercise):
        results = by_variant.get((exercise.id, f"alt:{alternative.name}"), [])
        failed = [r for r in results if r.outcome != "passed"]
        verdict.alternatives[alternative.name] = [r.name for r in failed]
        if not results:
            verdict.problems.append(f"alternative {alternative.name} ran no test")
        for result in failed:
            summary = " / ".join(result.message.strip().splitlines()[:2])
            verdict.problems.append(
                f"the suite over-specifies: alternative {alternative.name} "
                f"{'fails' if result.outcome == 'failed' else 'errors in'} {result.name}: {summary}"
            )


def verify_notes(catalog: Catalog, notes_dir: Path | None = None) -> CourseVerdict:
    """Pitfall traceability of every note: enforced for the catalog's pitfall_traceability."""
    folder = notes_dir or paths.NOTES_DIR
    verdict = CourseVerdict()
    by_id = {e.id: e for e in catalog.exercises if e.available}

    def tests_of(exercise_id: str) -> set[str] | None:
        return set(grade_marks(by_id[exercise_id])) if exercise_id in by_id else None

    def mutants_of(exercise_id: str) -> set[str] | None:
        if exercise_id not in by_id:
            return None
        return {m.name for m in variants.mutants_for(by_id[exercise_id])}

    for name in catalog.pitfall_traceability:
        if not (folder / name).is_file():
            verdict.problems.append(
                f"pitfall_traceability lists notes/{name}, which does not exist"
            )
    for note in sorted(folder.glob("*.md")):
        found, problems = pitfalls.read_note(note)
        verdict.pitfalls[note.name] = len(found)
        if note.name in catalog.pitfall_traceability:
            verdict.problems += problems
            verdict.problems += pitfalls.pitfall_problems(found, tests_of, mutants_of)
        elif found:
            verdict.warnings.append(
                f"notes/{note.name}: pitfall traceability not enforced yet ({len(found)} "
                "pitfalls): fill in their 评分 cells, then list the note in the catalog's "
                "pitfall_traceability"
            )
    return verdict


def update_hashes(catalog_file: Path, exercises: Iterable[Exercise]) -> list[str]:
    """Rewrite the stub_blob of each exercise in the catalog file; returns the ids changed."""
    text = catalog_file.read_text(encoding="utf-8")
    changed = []
    for exercise in exercises:
        stub = exercise.stub_path()
        if not stub.is_file():
            continue
        current = git_blob_sha(stub.read_bytes())
        if current == exercise.stub_blob:
            continue
        block = re.search(
            rf'(\[\[exercise\]\]\nid = "{re.escape(exercise.id)}"\n)(.*?)(?=\n\[\[|\n# -|\Z)',
            text,
            re.S,
        )
        if block is None:
            continue
        body = re.sub(r'\nstub_blob = "[0-9a-f]*"', "", block.group(2))
        body = body.rstrip("\n") + f'\nstub_blob = "{current}"\n'
        text = text[: block.start(2)] + body + text[block.end(2) :]
        changed.append(exercise.id)
    catalog_file.write_text(text, encoding="utf-8")
    return changed
