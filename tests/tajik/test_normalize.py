import pytest

from tajik import looks_tajik, normalize, repair_legacy_font


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Салом, њамаи шумо чї хел?", "Салом, ҳамаи шумо чӣ хел?"),
        ("Ман ба мактаб меравам ва дарсњоро таќрор мекунам.", "Ман ба мактаб меравам ва дарсҳоро тақрор мекунам."),
        ("ЉУМЊУРИИ ТОЉИКИСТОН дар Осиёи Марказї аст", "ҶУМҲУРИИ ТОҶИКИСТОН дар Осиёи Марказӣ аст"),
    ],
)
def test_legacy_font_letters_are_repaired_in_tajik(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "foreign",
    [
        "Његово име је Марко и живи у Београду.",  # Serbian
        "Інсон оиласи барча аъзоларига ҳос бўлган қадр-қиммат ва тенг ҳуқуқлари",  # Uzbek-like with ў
        "Україна — держава у Східній Європі, її столиця Київ.",  # Ukrainian
    ],
)
def test_other_languages_are_never_repaired(foreign: str) -> None:
    assert repair_legacy_font(foreign) == foreign


def test_normalize_composes_and_cleans_whitespace() -> None:
    decomposed = "и\u0306 ва  к\u0306\u200f\tхуб\r\n\r\n\r\n\r\nнав"
    assert normalize(decomposed) == "й ва к̆ хуб\n\nнав"


def test_tajik_typed_on_a_russian_keyboard_still_looks_tajik() -> None:
    assert looks_tajik("Ман ба мактаб меравам, чунки хондан мехохам")
    assert not looks_tajik("Я иду в школу, потому что хочу учиться")
