"""`python3 -m grader ...`: sets up the project's .venv on first use, then runs the CLI.

Only the standard library is used before the hand-over, so this works with a bare python3.
"""

from grader.bootstrap import ensure_environment

ensure_environment()

from grader.cli import main  # noqa: E402  (needs the environment ensured above)

main()
