"""The learner-facing chrome of the grader in English or Simplified Chinese.

Status words, headings, the next step, hints, legends: `t(key, **values)` in the current
language. Test messages themselves stay English. The language is, in order: `--lang`
(`set_language`), ``CRONKATA_LANG``, then the locale (``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES``, ``LANG``): ``zh...`` is Chinese, anything else English.

Forked grading children inherit the parent's choice (a module global), so the timeline
legend a suite draws in a child is in the learner's language too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

EN = "en"
ZH = "zh"
LANGUAGES = (EN, ZH)
_LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_chosen: str | None = None  # set by --lang; None: from the environment


def normalize(value: str | None) -> str | None:
    """``zh``, ``zh_CN.UTF-8``, ``zh-Hans`` -> ``zh``; ``en...``/``C``/``POSIX`` -> ``en``."""
    if not value:
        return None
    head = value.strip().split(":")[0].lower()  # LANGUAGE may list several: zh_CN:en
    if head.startswith("zh"):
        return ZH
    if head.startswith("en") or head.split(".")[0] in ("c", "posix"):
        return EN
    return EN if head else None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for (English when it names none or another)."""
    env = os.environ if environ is None else environ
    explicit = normalize(env.get("CRONKATA_LANG"))
    if explicit is not None:
        return explicit
    for name in _LOCALE_VARIABLES:
        found = normalize(env.get(name))
        if found is not None:
            return found
    return EN


def set_language(value: str | None) -> None:
    """Choose the language (``en``/``zh``, or a locale name); ``None``: from the environment."""
    global _chosen
    _chosen = normalize(value) if value else None


def language() -> str:
    """The current language: ``en`` or ``zh``."""
    return _chosen or from_environment()


MESSAGES: dict[str, dict[str, str]] = {
    # -- status words ------------------------------------------------------------------
    "status.pass": {EN: "PASS", ZH: "通过"},
    "status.fail": {EN: "FAIL", ZH: "未通过"},
    "status.passed": {EN: "passed", ZH: "已通过"},
    "status.failing": {EN: "failing {failed} of {total}", ZH: "未通过 {failed}/{total}"},
    "status.not_started": {EN: "not started", ZH: "未开始"},
    "status.coming_soon": {EN: "coming soon", ZH: "即将推出"},
    "status.missing": {EN: "file missing", ZH: "文件缺失"},
    "outcome.passed": {EN: "passed", ZH: "通过"},
    "outcome.failed": {EN: "failed", ZH: "失败"},
    "outcome.error": {EN: "error", ZH: "出错"},
    "outcome.not run": {EN: "not run", ZH: "未运行"},
    # -- check / watch -----------------------------------------------------------------
    "check.grading": {EN: "grading {names}...", ZH: "正在评分 {names}……"},
    "check.exercise_passed": {
        EN: "{exercise}: passed ({points}/{max_points} points)",
        ZH: "{exercise}：全部通过（{points}/{max_points} 分）",
    },
    "check.exercise_failing": {
        EN: "{exercise}: {passed}/{total} passed ({points}/{max_points} points)",
        ZH: "{exercise}：{passed}/{total} 个测试通过（{points}/{max_points} 分）",
    },
    "check.lead": {
        EN: "{status} {exercise} :: {name} ({points} pt), the first failing test",
        ZH: "{status} {exercise} :: {name}（{points} 分），第一个未通过的测试",
    },
    "check.test_line": {
        EN: "{status} {exercise} :: {name} ({points} pt)",
        ZH: "{status} {exercise} :: {name}（{points} 分）",
    },
    "report.first_failure": {
        EN: "{exercise}: {failed} failing test(s); the first: {name}: {message}",
        ZH: "{exercise}：{failed} 个测试未通过；第一个：{name}：{message}",
    },
    "report.details": {
        EN: "details: python3 -m grader check {exercise}",
        ZH: "详情：python3 -m grader check {exercise}",
    },
    "check.same_error": {
        EN: "the same error also fails {count} more test(s): {names}",
        ZH: "同一个错误还让另外 {count} 个测试未通过：{names}",
    },
    "check.load_problem": {
        EN: "{file} cannot be loaded, so all {count} tests fail for this one reason:",
        ZH: "{file} 无法加载，所以全部 {count} 个测试都因为这一个原因未通过：",
    },
    "check.more": {
        EN: "and {count} more failing test(s): {names}",
        ZH: "另有 {count} 个测试未通过：{names}",
    },
    "check.promise": {
        EN: "promise: {tags} in the stub's docstrings",
        ZH: "承诺：桩文件文档字符串中的 {tags}",
    },
    "check.read": {EN: "read: notes/{note}", ZH: "阅读：notes/{note}"},
    "check.hint_revealed": {EN: "hint: {hint}", ZH: "提示：{hint}"},
    "check.nudge": {
        EN: "stuck? `python3 -m grader hint {exercise}` reveals a hint ({seen} of {total} seen)",
        ZH: "卡住了？运行 `python3 -m grader hint {exercise}` 查看一条提示"
        "（已看 {seen}/{total} 条）",
    },
    "check.untouched": {
        EN: "{file} is still the untouched stub.",
        ZH: "{file} 还是未修改的桩文件。",
    },
    "check.total": {
        EN: "{passed}/{total} tests passed, {points}/{max_points} points",
        ZH: "共 {passed}/{total} 个测试通过，{points}/{max_points} 分",
    },
    "next.exercise": {
        EN: "Next: {exercise} ({title}): edit {file}, read notes/{note}, "
        "then run: python3 -m grader check {exercise}",
        ZH: "下一步：{exercise}（{title}）：编辑 {file}，阅读 notes/{note}，"
        "然后运行：python3 -m grader check {exercise}",
    },
    "next.compare": {
        EN: "Compare with the reference solution: python3 -m grader compare {exercise}",
        ZH: "对照参考答案：python3 -m grader compare {exercise}",
    },
    "next.all_done": {
        EN: "Every available exercise passes. Well done!",
        ZH: "所有已开放的练习都通过了，干得好！",
    },
    "next.last": {
        EN: "That was the last exercise available so far; more are coming soon.",
        ZH: "这是目前最后一个已开放的练习，更多练习即将推出。",
    },
    "watch.watching": {
        EN: "watching {count} file(s); save one to grade it (Ctrl+C stops)",
        ZH: "正在监视 {count} 个文件；保存文件即重新评分（Ctrl+C 停止）",
    },
    "watch.waiting": {EN: "waiting for changes...", ZH: "等待文件修改……"},
    "progress.tests": {EN: "{done}/{total} tests", ZH: "{done}/{total} 个测试"},
    "check.planned": {
        EN: "{exercise} ({title}) is not available yet: it is planned for {planned}.",
        ZH: "{exercise}（{title}）尚未开放。计划：{planned}。",
    },
    "check.coming_soon": {
        EN: "{exercise} ({title}) is not available yet: it is coming soon.",
        ZH: "{exercise}（{title}）尚未开放，即将推出。",
    },
    # -- watch on a terminal (keys) ----------------------------------------------------
    "watch.title": {EN: "cronkata watch", ZH: "cronkata 监视模式"},
    "watch.progress": {EN: "{done}/{total} exercises done", ZH: "已完成 {done}/{total} 个练习"},
    "watch.current": {
        EN: "exercise {number}/{total}: {exercise} ({title})",
        ZH: "练习 {number}/{total}：{exercise}（{title}）",
    },
    "watch.file": {EN: "edit: {file}", ZH: "编辑：{file}"},
    "watch.not_graded": {EN: "not graded yet", ZH: "尚未评分"},
    "watch.missing": {
        EN: "{file} does not exist: save it to grade it",
        ZH: "{file} 不存在：保存这个文件即可评分",
    },
    "watch.passed": {EN: "{exercise} passes!", ZH: "{exercise} 全部通过！"},
    "watch.offer_next": {
        EN: "Next: {exercise} ({title}): {file}, read notes/{note}. Press n to go there.",
        ZH: "下一个：{exercise}（{title}）：{file}，阅读 notes/{note}。按 n 进入。",
    },
    "watch.no_next": {
        EN: "no other exercise is unfinished",
        ZH: "没有其他未完成的练习了",
    },
    "watch.graded_at": {
        EN: "graded at {time}; each save of {file} grades it again",
        ZH: "评分时间 {time}；每次保存 {file} 都会重新评分",
    },
    "watch.keys": {
        EN: "keys: n next · h hint · l list · c check all · r reset · q quit",
        ZH: "按键：n 下一个 · h 提示 · l 列表 · c 全部评分 · r 重置 · q 退出",
    },
    "watch.list_title": {EN: "exercises", ZH: "练习列表"},
    "watch.done": {EN: "done", ZH: "已完成"},
    "watch.pending": {EN: "pending", ZH: "未完成"},
    "watch.continue_here": {EN: "<- continue here", ZH: "<- 从这里继续"},
    "watch.list_pick": {
        EN: "type an exercise's number and Enter to go there; l or Esc goes back",
        ZH: "输入练习编号并按回车即可跳转；按 l 或 Esc 返回",
    },
    "watch.typed": {EN: "go to number: {number}", ZH: "跳转到编号：{number}"},
    "watch.no_such_number": {
        EN: "no exercise has the number {number}",
        ZH: "没有编号为 {number} 的练习",
    },
    "watch.confirm_reset": {
        EN: "Reset {file} to the pristine stub? Your file is backed up first. [y/N]",
        ZH: "把 {file} 重置为原始桩文件吗？你的文件会先备份。[y/N]",
    },
    "watch.reset_cancelled": {EN: "nothing reset", ZH: "没有重置任何文件"},
    "watch.reset_pristine": {
        EN: "{exercise}: already the pristine stub",
        ZH: "{exercise}：已经是原始桩文件",
    },
    "watch.reset_done": {
        EN: "{exercise}: your file is saved as {backup}; {file} is the pristine stub again",
        ZH: "{exercise}：你的文件已备份为 {backup}；{file} 已恢复为原始桩文件",
    },
    "watch.hint_again": {
        EN: "press h again for the next hint; failures of this test now show it.",
        ZH: "再按 h 可看下一条提示；这个测试失败时也会显示这条提示。",
    },
    "watch.harness_error": {
        EN: "the grader failed (not your code): {error}",
        ZH: "评分程序出错（不是你的代码的问题）：{error}",
    },
    "watch.bye": {
        EN: "watch stopped; run python3 -m grader watch to continue where you are.",
        ZH: "监视已停止；运行 python3 -m grader watch 可从当前进度继续。",
    },
    # -- report --------------------------------------------------------------------------
    "report.grading": {EN: "grading your exercises...", ZH: "正在为你的练习评分……"},
    "report.title": {EN: "cronkata progress", ZH: "cronkata 学习进度"},
    "report.level": {EN: "level", ZH: "级别"},
    "report.exercise": {EN: "exercise", ZH: "练习"},
    "report.status": {EN: "status", ZH: "状态"},
    "report.points": {EN: "points", ZH: "得分"},
    "report.overall": {
        EN: "Overall: {done}/{available} exercises passed, {points}/{max_points} points",
        ZH: "总计：{done}/{available} 个练习已通过，{points}/{max_points} 分",
    },
    "report.overall_soon": {
        EN: "Overall: {done}/{available} exercises passed, {points}/{max_points} points "
        "({soon} more coming soon)",
        ZH: "总计：{done}/{available} 个练习已通过，{points}/{max_points} 分"
        "（另有 {soon} 个即将推出）",
    },
    "report.next": {
        EN: "Next: edit {file} (read notes/{note}), then run: python3 -m grader check {exercise}",
        ZH: "下一步：编辑 {file}（阅读 notes/{note}），"
        "然后运行：python3 -m grader check {exercise}",
    },
    "report.written": {EN: "results written to {path}", ZH: "结果已写入 {path}"},
    "report.planned": {
        EN: "coming soon: {exercise}, planned for {planned}",
        ZH: "即将推出：{exercise}。计划：{planned}",
    },
    # -- hint ----------------------------------------------------------------------------
    "hint.header": {
        EN: "hint {number} of {total} for {exercise} (first failing test: {test}):",
        ZH: "{exercise} 的第 {number}/{total} 条提示（第一个未通过的测试：{test}）：",
    },
    "hint.seen": {EN: "hints you have already seen:", ZH: "你已经看过的提示："},
    "hint.none_left": {
        EN: "no more hints for {exercise}: you have seen all {total}. Re-read notes/{note}; "
        "`python3 -m grader compare {exercise} --force` shows the reference solution.",
        ZH: "{exercise} 没有更多提示了：{total} 条你都看过了。再读一遍 notes/{note}；"
        "`python3 -m grader compare {exercise} --force` 可以查看参考答案。",
    },
    "hint.passes": {
        EN: "{exercise} passes: no hint needed. "
        "Compare with the reference solution: python3 -m grader compare {exercise}",
        ZH: "{exercise} 已全部通过，不需要提示。对照参考答案：python3 -m grader compare {exercise}",
    },
    "hint.again": {
        EN: "run it again for the next hint; failures of this test now show it.",
        ZH: "再运行一次可看下一条提示；这个测试失败时也会显示这条提示。",
    },
    # -- compare -------------------------------------------------------------------------
    "compare.held_back": {
        EN: "The reference solution is shown once {exercise} passes ({passed}/{total} tests "
        "pass now). `python3 -m grader compare {exercise} --force` shows it anyway.",
        ZH: "{exercise} 全部通过后才显示参考答案（目前 {passed}/{total} 个测试通过）。"
        "`python3 -m grader compare {exercise} --force` 可以强制显示。",
    },
    "compare.forced": {
        EN: "warning: {exercise} does not pass yet ({passed}/{total}): reading the solution "
        "now spoils the exercise. Shown because of --force.",
        ZH: "警告：{exercise} 还没有通过（{passed}/{total}）：现在看答案会失去练习的意义。"
        "因为使用了 --force 才显示。",
    },
    "compare.tests": {EN: "{exercise}: tests", ZH: "{exercise}：测试"},
    "compare.test": {EN: "test", ZH: "测试"},
    "compare.yours": {EN: "yours", ZH: "你的"},
    "compare.solution": {EN: "solution", ZH: "参考答案"},
    # -- timeline (drawn by the suites, in the grading child) ---------------------------
    "timeline.legend": {
        EN: "legend: <> marks a row where your run differs from the expected one; - means no run",
        ZH: "图例：<> 表示这一行你的运行与期望不同；- 表示没有运行",
    },
    "timeline.expected": {EN: "expected", ZH: "期望"},
    "timeline.actual": {EN: "actual", ZH: "实际（你的代码）"},
    "timeline.before": {EN: "  ... {count} matching row(s) before", ZH: "  …… 之前 {count} 行相同"},
    "timeline.after": {
        EN: "  ... {count} more row(s), {different} of them different",
        ZH: "  …… 之后还有 {count} 行，其中 {different} 行不同",
    },
    "timeline.your_first": {EN: "your first run:     {moment}", ZH: "你的第一次运行：{moment}"},
    "timeline.expected_first": {
        EN: "expected first run: {moment}",
        ZH: "期望的第一次运行：{moment}",
    },
    "timeline.after_window": {EN: ", after the window graded", ZH: "，在评分的时间窗口之后"},
    "timeline.never": {
        EN: "your code never runs it: no run in the window and none scheduled after it",
        ZH: "你的代码从未运行它：时间窗口内没有运行，之后也没有安排运行",
    },
    "timeline.later": {
        EN: "your next runs after the window: {moments}",
        ZH: "你在时间窗口之后的运行：{moments}",
    },
    "timeline.offset_after": {EN: "+{span}", ZH: "开始后 {span}"},
    "timeline.offset_before": {EN: "{span} before the start", ZH: "开始前 {span}"},
}


def t(key: str, **values: object) -> str:
    """The message ``key`` in the current language, formatted with ``values``."""
    entry = MESSAGES[key]
    text = entry.get(language()) or entry[EN]
    return text.format(**values) if values else text
