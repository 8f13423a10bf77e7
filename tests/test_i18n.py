"""The learner's language: chosen from --lang, CRONKATA_LANG or the locale; English fallback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grader import i18n


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    i18n.set_language(None)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.UTF-8"}, "zh"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "C.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LANGUAGE": "zh_CN:en", "LANG": "C"}, "zh"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"CRONKATA_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"CRONKATA_LANG": "zh", "LANG": "C"}, "zh"),
    ],
)
def test_the_language_comes_from_the_environment(environ: dict[str, str], expected: str) -> None:
    assert i18n.from_environment(environ) == expected


def test_set_language_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONKATA_LANG", "en")
    assert i18n.language() == "en"
    i18n.set_language("zh")
    assert i18n.language() == "zh"
    assert i18n.t("status.pass") == "通过"
    i18n.set_language(None)
    assert i18n.t("status.pass") == "PASS"


def test_every_message_has_both_languages_with_the_same_fields() -> None:
    import string

    for key, entry in i18n.MESSAGES.items():
        assert set(entry) == set(i18n.LANGUAGES), key
        fields = [
            {name for _, name, _, _ in string.Formatter().parse(entry[lang]) if name}
            for lang in i18n.LANGUAGES
        ]
        assert fields[0] == fields[1], key
