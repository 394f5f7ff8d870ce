from tajik import encoding_of, segment_count, to_latin
from tajik.sms import SmsEncoding


def test_tajik_letters_get_their_latin_spelling() -> None:
    assert to_latin("Тоҷикистон") == "Tojikiston"
    assert to_latin("Ҳафтаи оянда ҷашни Наврӯз аст.") == "Haftai oyanda jashni Navruz ast."
    assert to_latin("Ғазал, қиссаи ӯ ва шеъри ӣ") == "Ghazal, qissai u va she'ri i"


def test_latin_tajik_fits_gsm7_and_so_more_text_per_segment() -> None:
    text = "Салом! Имрӯз ҳаво хуб аст, ба мактаб равед ва дарсҳоро хуб тайёр кунед. Саломат бошед!"
    latin = to_latin(text)
    assert encoding_of(text) is SmsEncoding.UCS2
    assert encoding_of(latin) is SmsEncoding.GSM7
    assert segment_count(latin) < segment_count(text)
