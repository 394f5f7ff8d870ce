from hypothesis import given
from hypothesis import strategies as st

from tajik import Script, script_of


def test_each_script_is_told_by_its_letters() -> None:
    assert script_of("Салом, чӣ хел?") is Script.CYRILLIC
    assert script_of("Салом, чи хел?") is Script.CYRILLIC
    assert script_of("Salom, chi hel?") is Script.LATIN
    assert script_of("Ṣalom, ƣazal, çaroƣ, şahr, Lotinī") is Script.LATIN
    assert script_of("Ман salom гуфтам, tu chi?") is Script.MIXED
    assert script_of("سلام، چطوری؟") is Script.OTHER
    assert script_of("12:30 👍 !!!") is Script.OTHER
    assert script_of("") is Script.OTHER


def test_a_brand_name_in_a_cyrillic_line_does_not_make_it_mixed() -> None:
    assert script_of("Ман паёмро дар Telegram навиштам, дар хона мехонам") is Script.CYRILLIC


@given(st.text(alphabet="абвгғдеёжзиӣйкқлмнопрстуӯфхҳчҷшъэюя ,.?!", min_size=1).filter(str.strip))
def test_tajik_cyrillic_letters_alone_are_cyrillic(text: str) -> None:
    letters = [ch for ch in text if ch.isalpha()]
    assert script_of(text) is (Script.CYRILLIC if letters else Script.OTHER)
