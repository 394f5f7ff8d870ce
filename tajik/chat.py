"""Which language a short chat line is in: Tajik (Cyrillic, Russian-keyboard or Latin) or a neighbour.

Paragraphs carry enough function words and Tajik letters for ``looks_tajik``; a chat line ("Салом, чи хел?",
"Rahmat", "Man imruz naraftam") often has neither. Here every word votes for the languages it belongs to:
Tajik by the lexicon of word forms (through its Russian-keyboard key, or its Latin spelling), the neighbours by
short lists of their most frequent words, and letters that only one language writes count double. A word known
to several languages splits its vote.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from tajik.letters import OTHER_CYRILLIC_LETTERS, RUSSIAN_ONLY_LETTERS
from tajik.lexicon import Lexicon, default_lexicon, key_of
from tajik.translit import canonical_latin, spell_cyrillic

TAJIK = "tg"
UNDETERMINED = "und"
LANGUAGES = ("tg", "ru", "uz", "kk", "ky", "fa", "en")

_WORD = re.compile(r"[^\W\d_]+(?:['’ʻʼ‘`][^\W\d_]+)*['’ʻʼ‘`]?")

_RU = frozenset(
    """
    и в не на я что он с а как это по но они к у ты из мы за вы так же от для о все она его бы только её
    мне было вот меня еще ещё нет уже ли если когда даже ну вдруг до или быть был него раз там чем тебя
    себя ничего ей может они тут где есть надо ней чтобы сейчас кто да со будет ж тогда этого при про
    об через после перед под над между без мой тоже также потому этот эта эти тот та те такой
    привет здравствуйте спасибо пожалуйста хорошо плохо сегодня завтра вчера сколько почему зачем какой
    какая какие как дела нормально очень можно нельзя помогите помоги подскажите скажите знаю знаешь
    хочу хочешь могу можешь хорошего дня доброе утро добрый день вечер ночи пока ладно давай давайте
    мой моя мои твой твоя ваш ваша наш наша здесь туда сюда всё время работа школа дом друг мама папа
    брат сестра говорить говорю понимаю понял поняла не понимаю вопрос ответ помощь нужно надо был была
    было были буду будешь будем сделать делать сделал делаю пишу написать читать читаю учусь учиться
    стоит цена денег деньги купить магазин где находится как пройти до свидания извините простите
    большое много мало новый новая старый лучше хуже день неделя месяц год часов минут можно ли
    """.split()
)
_UZ_CYRL = frozenset(
    """
    бир ҳар бу шу у ва билан учун эмас бор йўқ керак мен сен биз сиз улар нима қандай қаерда қачон нега
    яхши ёмон катта кичик бугун эртага кеча раҳмат ассалому алайкум хайр кўришгунча марҳамат илтимос
    ҳа йўқ майли бўлади бўлмайди қилиш қилдим қиламан келдим келаман бордим бораман ишлайман ўқийман
    менинг сенинг унинг бизнинг сизнинг уй мактаб ишхона дўст она ота ака опа ука сингил неча нарх
    пул вақт соат кун ҳафта ой йил ҳам фақат жуда кўп оз энди ҳозир кейин олдин саволим жавоб ёрдам салом
    нон қанча муборак мумкин секин тез экан эди эса аммо лекин чунки агар
    беринг айтинг биласизми биламан билмайман тушунмадим тушундим қалайсиз яхшимисиз ишлар
    """.split()
)
_UZ_LATN = frozenset(
    """
    bir har bu shu u va bilan uchun emas bor yoq yo'q kerak men sen biz siz ular nima qanday qayerda qachon nega
    yaxshi yomon katta kichik bugun ertaga kecha rahmat assalomu alaykum xayr ko'rishguncha marhamat iltimos
    ha mayli bo'ladi bo'lmaydi qilish qildim qilaman keldim kelaman bordim boraman ishlayman o'qiyman
    mening sening uning bizning sizning uy maktab ishxona do'st ona ota aka opa uka singil necha narx
    pul vaqt soat kun hafta oy yil ham faqat juda ko'p oz endi hozir keyin oldin savolim javob yordam salom
    non qancha muborak mumkin sekin tez bilan ekan edi esa ammo lekin chunki agar
    bering ayting bilasizmi bilaman bilmayman tushunmadim tushundim qalaysiz yaxshimisiz ishlar qalesan
    """.split()
)
_KK = frozenset(
    """
    мен сен біз сіз олар бұл сол және мен үшін емес бар жоқ керек не қалай қайда қашан неге жақсы
    жаман үлкен кіші бүгін ертең кеше рахмет сәлем сәлеметсіз бе иә жоқ болады болмайды қазір кейін
    менің сенің оның біздің сіздің үй мектеп дос ана әке аға апа ақша уақыт сағат күн апта ай жыл да
    де тек өте көп аз енді сұрақ жауап көмек беріңіз айтыңыз білемін білмеймін түсінбедім қалайсыз
    """.split()
)
_KY = frozenset(
    """
    мен сен биз сиз алар бул ошол жана менен үчүн эмес бар жок керек эмне кандай кайда качан эмнеге
    жакшы жаман чоң кичине бүгүн эртең кечээ рахмат салам саламатсызбы ооба жок болот болбойт азыр
    кийин менин сенин анын биздин сиздин үй мектеп дос апа ата ага эже акча убакыт саат күн жума ай
    жыл да дагы гана абдан көп аз эми суроо жооп жардам бериңиз айтыңыз билем билбейм түшүнгөн жокмун
    кандайсың кандайсыз
    """.split()
)
_EN = frozenset(
    """
    the be to of and a in that have i it for not on with he as you do at this but his by from they we say
    her she or an will my one all would there their what so up out if about who get which go me when make
    can like time no just him know take people into year your good some could them see other than then now
    look only come its over think also back after use two how our work first well way even new want because
    any these give day most us is are was were am has had did does hello hi hey thanks thank please yes
    sorry help where why tomorrow today yesterday school teacher homework question answer speak english
    understand dont don't can't cannot doing fine ok okay morning evening night weather
    """.split()
)
_NEIGHBOURS = {"ru": _RU, "kk": _KK, "ky": _KY}
# Letters only one of the languages writes (after legacy-font repair): a word with them is that language's.
_ONLY = {"tg": "ӣӯҷ", "kk": "әіұһ", "uz": "ў"}
_KAZAKH_OR_KYRGYZ = "өүң"
# Endings that Tajik words typed on a Russian keyboard do not have: Russian verbs, adjectives, genitives.
_RUSSIAN_ENDINGS = ("ть", "ться", "ешь", "ет", "ют", "ого", "ому", "ый", "ая", "ое", "ие", "ых", "ой", "ся")
# Endings of Turkic words (Uzbek, Kazakh, Kyrgyz): cases, plurals, converbs, personal endings.
_TURKIC_ENDINGS = (
    "лар", "лер", "дар", "дер", "тар", "тер", "лор", "дор", "ган", "ген", "кан", "кен", "мын", "мин", "мун",
    "сыз", "сиз", "суз", "ды", "ди", "ты", "ти", "ып", "ип", "уп", "еп", "ап", "йт", "ат", "ет", "бай", "бей",
    "ман", "миз", "нинг", "дан", "ден", "дагы", "даги", "роқ", "япти", "моқда", "ади", "йди", "иш", "ига",
    "дир", "лик", "лари", "ларга", "ни", "га", "ий",
)  # fmt: skip
_UZBEK_LATIN_ENDINGS = (
    "lar", "ning", "ni", "ga", "da", "dan", "ingiz", "imiz", "yapti", "moqda", "moqchi", "adi", "ydi", "ish",
    "man", "miz", "siz", "roq", "gan", "dagi", "ib",
)  # fmt: skip
# Letters and endings English has and Tajik in Latin letters hardly ever does.
_ENGLISH_MARKS = ("w", "th", "ee", "oo", "ck", "ou")
_ENGLISH_ENDINGS = ("ing", "ed", "ly", "tion", "ness")
# A word the Tajik lexicon does not know is weak evidence that the line is not Tajik.
_UNKNOWN = 0.4
# Forms written this often in the corpus are everyday Tajik words, whatever a neighbour's list says.
_FREQUENT = 20
# Verb prefixes: continuous ме-, negative на-, наме-, imperative би-.
_TAJIK_PREFIXES = ("наме", "ме", "на", "би")
# Endings of Tajik words as a Russian keyboard types them: plurals (-ҳо), persons, the object -ро, izofat.
_TAJIK_SUFFIXES = (
    "хоямон", "хоям", "хои", "хоро", "хо", "ам", "ед", "ем", "анд", "ад", "ро", "и", "ат", "аш", "он", "ор",
)  # fmt: skip
_UZBEK_LATIN_MARKS = ("o'", "g'", "oʻ", "gʻ", "o’", "g’")


_ARABIC = re.compile("[\u0600-\u06ff\ufb50-\ufdff\ufe70-\ufefe]")
_LETTERS = re.compile(r"[^\W\d_]")
_APOSTROPHES = "'’ʻʼ‘`"


def _affixes_off(key: str) -> Iterator[str]:
    """``key`` without a Tajik verb prefix and one or two endings, each way that leaves a stem of 2+ letters."""
    bare = [key] + [key[len(p) :] for p in _TAJIK_PREFIXES if key.startswith(p) and len(key) - len(p) >= 2]
    for word in bare:
        if word != key:
            yield word
        for suffix in _TAJIK_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 2:
                stem = word[: -len(suffix)]
                yield stem
                for inner in _TAJIK_SUFFIXES:
                    if stem.endswith(inner) and len(stem) - len(inner) >= 2:
                        yield stem[: -len(inner)]


@functools.cache
def _stems(lexicon: Lexicon) -> frozenset[str]:
    """Stems of the lexicon's keys: an unknown word with a known stem ("кунед" of "кунам") is likely Tajik."""
    return frozenset(stem for key in lexicon.by_key for stem in _affixes_off(key))


def _tajik_key(key: str, lexicon: Lexicon) -> float:
    """How surely ``key`` is a Tajik word: more for a frequent form, less for a known stem with endings."""
    forms = lexicon.by_key.get(key)
    if forms is not None:
        return 1.5 if sum(forms.values()) >= _FREQUENT else 1.0
    stems = _stems(lexicon)
    if any(stem in stems or stem in lexicon for stem in _affixes_off(key)):
        return 0.7
    # Tajik writes compounds as one word: "пешгуфтор" is "пеш" and "гуфтор".
    by_key = lexicon.by_key
    for i in range(3, len(key) - 2):
        head, tail = key[:i], key[i:]
        if head in by_key and (tail in by_key or tail in stems or any(s in by_key for s in _affixes_off(tail))):
            return 0.7
    return 0.0


Claims = tuple[tuple[str, float], ...]


def _shared(claims: dict[str, float]) -> Claims:
    """One word's vote, split among the languages that claim it, each in proportion to how sure it is."""
    share = sum(claims.values())
    return tuple((language, weight * weight / share) for language, weight in claims.items())


@functools.lru_cache(maxsize=65536)
def _cyrillic_claims(word: str, lexicon: Lexicon) -> Claims:
    letters = set(word)
    for language, only in _ONLY.items():
        if not letters.isdisjoint(only):
            return ((language, 2.0),)
    if not letters.isdisjoint(_KAZAKH_OR_KYRGYZ):
        return (("kk" if word in _KK else "ky", 2.0),)
    if not letters.isdisjoint(OTHER_CYRILLIC_LETTERS):
        return ((UNDETERMINED, 2.0),)
    russian_letters = not letters.isdisjoint(RUSSIAN_ONLY_LETTERS)
    claims: dict[str, float] = {}
    if not russian_letters:
        tajik = _tajik_key(key_of(word), lexicon)
        if tajik:
            claims["tg"] = tajik
    for language, words in _NEIGHBOURS.items():
        if word in words:
            claims[language] = 1.0
    if word in _UZ_CYRL:
        claims["uz"] = 1.0
    if claims:
        return _shared(claims)
    if russian_letters:
        # ы is Kazakh and Kyrgyz as well as Russian; Tajik never writes it, nor щ ц ь.
        return (("ky" if word.endswith(_TURKIC_ENDINGS) else "ru", 1.5),)
    # ҳ қ ғ are letters of Tajik and Uzbek (қ ғ also of Kazakh), never of Russian or Kyrgyz.
    tajik_letters = not letters.isdisjoint("ҳқғ")
    if word.endswith(_TURKIC_ENDINGS):
        return (("uz" if tajik_letters else "ky", 0.7),)
    if tajik_letters:
        return (("tg", 0.25), ("uz", 0.25))
    return (("ru", 0.7 if word.endswith(_RUSSIAN_ENDINGS) else _UNKNOWN),)


def _tajik_latin(word: str, lexicon: Lexicon) -> float:
    """Like ``_tajik_key``, for a word in Latin letters: a form's own Latin spelling, else its Cyrillic key."""
    canonical = canonical_latin(word)
    if lexicon.latin_forms(word) is not None or lexicon.latin_forms(canonical) is not None:
        return 1.0
    return _tajik_key(key_of(spell_cyrillic(canonical)), lexicon)


@functools.lru_cache(maxsize=65536)
def _word_weight(word: str, lexicon: Lexicon) -> float:
    if "\u0400" <= word[0] <= "\u04ff":
        tajik = _tajik_key(key_of(word), lexicon) if set(word).isdisjoint(RUSSIAN_ONLY_LETTERS) else 0.0
    else:
        tajik = _tajik_latin(word.rstrip(_APOSTROPHES), lexicon)
    return min(tajik, 1.0)


def tajik_word_weight(word: str, lexicon: Lexicon | None = None) -> float:
    """How surely the lexicon knows ``word`` as Tajik, in any of the three spellings, as the chat decision does.

    1 for a form the lexicon has, 0.7 for a known stem with Tajik affixes or a compound of known words, 0 for
    the rest: never by its letters alone (ӣ ӯ ҷ make a word vote Tajik in ``chat_language``, but a
    random-weight model writes them too).
    """
    word = word.lower()
    return _word_weight(word, lexicon or default_lexicon()) if word else 0.0


@functools.lru_cache(maxsize=65536)
def _latin_claims(word: str, lexicon: Lexicon) -> Claims:
    if any(mark in word for mark in _UZBEK_LATIN_MARKS):
        return (("uz", 2.0),)
    claims: dict[str, float] = {}
    tajik = _tajik_latin(word, lexicon)
    if tajik:
        claims["tg"] = tajik
    if word in _EN:
        claims["en"] = 1.0
    if word in _UZ_LATN:
        claims["uz"] = 1.0
    if claims:
        return _shared(claims)
    if word.endswith(_ENGLISH_ENDINGS) or any(mark in word for mark in _ENGLISH_MARKS):
        return (("en", 0.7),)
    if word.endswith(_UZBEK_LATIN_ENDINGS):
        return (("uz", 0.7),)
    return (("en", _UNKNOWN),)


def chat_language(text: str, lexicon: Lexicon | None = None) -> str:
    """The language of a short chat line: one of ``LANGUAGES``, or ``UNDETERMINED``.

    The line is Tajik when its Tajik votes are at least those of all other languages together: ties go to
    Tajik, since the service is for Tajik speakers and a lone "Рахмат" from one of them is Tajik.
    """
    lexicon = lexicon or default_lexicon()
    arabic = len(_ARABIC.findall(text))
    if arabic and arabic * 2 > len(_LETTERS.findall(text)):
        return "fa"
    votes: dict[str, float] = {}
    for word in _WORD.findall(text.lower()):
        if "\u0400" <= word[0] <= "\u04ff":
            claims = _cyrillic_claims(word, lexicon)
        elif "a" <= word[0] <= "z" or "\u00c0" <= word[0] <= "\u024f":
            claims = _latin_claims(word.rstrip(_APOSTROPHES), lexicon)
        else:
            continue
        for language, weight in claims:
            votes[language] = votes.get(language, 0.0) + weight
    if not votes:
        return UNDETERMINED
    tajik = votes.pop(TAJIK, 0.0)
    if tajik and tajik >= sum(votes.values()):
        return TAJIK
    return max(votes, key=votes.__getitem__)


def is_tajik_chat(text: str, lexicon: Lexicon | None = None) -> bool:
    """Whether a chat line is Tajik, in Cyrillic, typed on a Russian keyboard or in Latin letters."""
    return chat_language(text, lexicon) == TAJIK
