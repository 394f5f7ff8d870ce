"""Every text a user reads, in Tajik first, then Russian and English (the UI languages)."""

from __future__ import annotations

import enum

LANGUAGES = ("tg", "ru", "en")
LANGUAGE_NAMES = {"tg": "Тоҷикӣ", "ru": "Русский", "en": "English"}
# The scripts Tajik answers can come in (bot.reading), each named in itself.
SCRIPT_NAMES = {"cyrl": "Кириллӣ", "latn": "Lotinī"}


class T(enum.StrEnum):
    GREETING = "greeting"
    HELP = "help"
    CHOOSE_LANGUAGE = "choose_language"
    LANGUAGE_SET = "language_set"
    SCRIPT_CYRILLIC = "script_cyrillic"
    SCRIPT_LATIN = "script_latin"
    NEW_CONVERSATION = "new_conversation"
    NON_TEXT = "non_text"
    TOO_LONG = "too_long"
    EMPTY = "empty"
    BUSY = "busy"
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN_COMMAND = "unknown_command"
    FORGOTTEN = "forgotten"
    NOT_OPERATOR = "not_operator"
    STATS = "stats"
    STATS_MODEL = "stats_model"
    ACCESS_USAGE = "access_usage"
    BLOCK_DONE = "block_done"
    UNBLOCK_DONE = "unblock_done"
    ALLOW_DONE = "allow_done"
    DISALLOW_DONE = "disallow_done"
    BLOCKED = "blocked"
    NOT_ALLOWED = "not_allowed"
    # Feedback: toasts are short (Telegram shows up to 200 characters), the question one line.
    FEEDBACK_THANKS = "feedback_thanks"
    FEEDBACK_CHANGED = "feedback_changed"
    FEEDBACK_GONE = "feedback_gone"
    FEEDBACK_WHY = "feedback_why"
    FEEDBACK_COMMENT_THANKS = "feedback_comment_thanks"
    # SMS: every segment costs the service money, so these stay within one segment (70 characters).
    SMS_STOPPED = "sms_stopped"
    SMS_WELCOME_BACK = "sms_welcome_back"
    SMS_QUOTA = "sms_quota"
    SMS_UNREADABLE = "sms_unreadable"
    SMS_FORGOTTEN = "sms_forgotten"


TEXTS: dict[T, dict[str, str]] = {
    T.GREETING: {
        "tg": "Ассалому алейкум! Ман Соро ҳастам, ёрдамчии шумо бо забони тоҷикӣ. "
        "Саволатонро нависед, ман содда ва кӯтоҳ ҷавоб медиҳам.",
        "ru": "Здравствуйте! Я Соро, ваш помощник на таджикском языке. Напишите вопрос, и я отвечу просто и коротко.",
        "en": "Hello! I am Soro, your assistant in Tajik. Write your question and I will answer simply and briefly.",
    },
    T.HELP: {
        "tg": "Саволатонро бо матн нависед, ман ҷавоб медиҳам ва суҳбатро дар ёд нигоҳ медорам.\n"
        "/new — суҳбати навро сар кардан (суҳбати пешина фаромӯш мешавад)\n"
        "/language — интихоби забон\n"
        "/forget — ҳамаи маълумоти шуморо нест кардан\n"
        "/help — ҳамин маълумот",
        "ru": "Напишите вопрос текстом: я отвечу и буду помнить наш разговор.\n"
        "/new — начать новый разговор (прежний забудется)\n"
        "/language — выбрать язык\n"
        "/forget — удалить все ваши данные\n"
        "/help — эта справка",
        "en": "Write your question as text: I will answer and remember our conversation.\n"
        "/new — start a new conversation (the previous one is forgotten)\n"
        "/language — choose the language\n"
        "/forget — delete all your data\n"
        "/help — this help",
    },
    T.CHOOSE_LANGUAGE: {
        "tg": "Забонро интихоб кунед (ва барои ҷавобҳои тоҷикӣ ҳарфҳоро: кириллӣ ё лотинӣ):",
        "ru": "Выберите язык (и буквы для ответов на таджикском: кириллица или латиница):",
        "en": "Choose a language (and the letters of Tajik answers: Cyrillic or Latin):",
    },
    T.LANGUAGE_SET: {
        "tg": "Хуб, акнун бо забони тоҷикӣ.",
        "ru": "Хорошо, теперь по-русски.",
        "en": "Fine, English it is.",
    },
    T.SCRIPT_CYRILLIC: {
        "tg": "Хуб, акнун ҷавобҳо бо ҳарфҳои кириллӣ меоянд.",
        "ru": "Хорошо, теперь ответы на таджикском придут кириллицей.",
        "en": "Fine, Tajik answers will now come in Cyrillic letters.",
    },
    T.SCRIPT_LATIN: {
        # Read by someone who asked for Latin letters, so written in them.
        "tg": "Xub, aknun javobho bo harfhoi lotinī meoyand.",
        "ru": "Хорошо, теперь ответы на таджикском придут латиницей.",
        "en": "Fine, Tajik answers will now come in Latin letters.",
    },
    T.NEW_CONVERSATION: {
        "tg": "Суҳбати нав сар шуд. Саволатонро нависед!",
        "ru": "Начали новый разговор. Пишите вопрос!",
        "en": "A new conversation has started. Ask away!",
    },
    T.NON_TEXT: {
        "tg": "Бубахшед, ман ҳоло танҳо матнро мефаҳмам. Лутфан саволатонро бо ҳарфҳо нависед.",
        "ru": "Извините, пока я понимаю только текст. Пожалуйста, напишите вопрос буквами.",
        "en": "Sorry, for now I only understand text. Please type your question.",
    },
    T.TOO_LONG: {
        "tg": "Паёматон хеле дароз аст: то {limit} ҳарф нависед. Лутфан онро кӯтоҳтар кунед.",
        "ru": "Сообщение слишком длинное: не больше {limit} знаков. Пожалуйста, сократите его.",
        "en": "Your message is too long: at most {limit} characters, please. Could you shorten it?",
    },
    T.EMPTY: {
        "tg": "Паёматон холӣ аст. Саволатонро нависед.",
        "ru": "Сообщение пустое. Напишите вопрос.",
        "en": "Your message is empty. Please write a question.",
    },
    T.BUSY: {
        "tg": "Ҳоло саволҳо хеле зиёданд. Лутфан пас аз як дақиқа боз нависед.",
        "ru": "Сейчас очень много вопросов. Пожалуйста, напишите снова через минуту.",
        "en": "Many people are asking right now. Please write again in a minute.",
    },
    T.RATE_LIMITED: {
        "tg": "Шумо хеле зуд менависед. Каме сабр кунед ва баъд боз нависед.",
        "ru": "Вы пишете слишком быстро. Подождите немного и напишите снова.",
        "en": "You are writing very fast. Please wait a little, then write again.",
    },
    T.QUOTA: {
        "tg": "Имрӯз шумо ҳамаи саволҳои рӯзонаро истифода бурдед. Фардо боз нависед!",
        "ru": "На сегодня вопросы закончились. Напишите завтра!",
        "en": "You have used all of today's questions. Write again tomorrow!",
    },
    T.EXPIRED: {
        "tg": "Бубахшед, ҷавоб сари вақт тайёр нашуд. Лутфан саволатонро боз як бор фиристед.",
        "ru": "Извините, ответ не успел подготовиться. Пожалуйста, отправьте вопрос ещё раз.",
        "en": "Sorry, the answer was not ready in time. Please send your question again.",
    },
    T.FAILED: {
        "tg": "Бубахшед, хато рух дод ва ман ҷавоб дода натавонистам. Лутфан каме баъд боз кӯшиш кунед.",
        "ru": "Извините, произошла ошибка, и я не смог ответить. Попробуйте чуть позже.",
        "en": "Sorry, something went wrong and I could not answer. Please try again a bit later.",
    },
    T.UNKNOWN_COMMAND: {
        "tg": "Ин фармонро намедонам. Барои дидани фармонҳо /help-ро пахш кунед.",
        "ru": "Не знаю такой команды. Нажмите /help, чтобы увидеть список.",
        "en": "I don't know that command. Tap /help to see the list.",
    },
    T.FORGOTTEN: {
        "tg": "Ҳамаи маълумоти шумо нест карда шуд. Агар хоҳед, боз нависед.",
        "ru": "Все ваши данные удалены. Если захотите, напишите снова.",
        "en": "All your data has been deleted. Write again whenever you like.",
    },
    T.NOT_OPERATOR: {
        "tg": "Ин фармон танҳо барои операторон аст.",
        "ru": "Эта команда только для операторов.",
        "en": "This command is for operators only.",
    },
    T.STATS: {
        "tg": "Имрӯз: {messages} паём, {answers} ҷавоб, {notices} огоҳӣ. Медианаи вақти ҷавоб: {median}.\n"
        "Навбат: {backlog} савол.",
        "ru": "Сегодня: {messages} сообщений, {answers} ответов, {notices} уведомлений. "
        "Медиана времени ответа: {median}.\nОчередь: {backlog} вопросов.",
        "en": "Today: {messages} messages, {answers} answers, {notices} notices. Median answer time: {median}.\n"
        "Queue: {backlog} questions.",
    },
    T.STATS_MODEL: {
        "tg": "{model}: {answers} ҷавоб, {notices} огоҳӣ, 👍 {up} · 👎 {down} ({share} 👍), медиана {latency}",
        "ru": "{model}: {answers} ответов, {notices} уведомлений, 👍 {up} · 👎 {down} ({share} 👍), медиана {latency}",
        "en": "{model}: {answers} answers, {notices} notices, 👍 {up} · 👎 {down} ({share} 👍), median {latency}",
    },
    T.ACCESS_USAGE: {
        "tg": "Рақамро нависед, масалан: /block 123456789 ё /block +992901234567",
        "ru": "Укажите номер, например: /block 123456789 или /block +992901234567",
        "en": "Give an id, for example: /block 123456789 or /block +992901234567",
    },
    T.BLOCK_DONE: {
        "tg": "{who} манъ карда шуд.",
        "ru": "{who} заблокирован.",
        "en": "{who} is blocked.",
    },
    T.UNBLOCK_DONE: {
        "tg": "{who} боз метавонад нависад.",
        "ru": "{who} разблокирован.",
        "en": "{who} is unblocked.",
    },
    T.ALLOW_DONE: {
        "tg": "{who} ба рӯйхати иҷозат илова шуд.",
        "ru": "{who} добавлен в список допуска.",
        "en": "{who} is on the allow-list.",
    },
    T.DISALLOW_DONE: {
        "tg": "{who} аз рӯйхати иҷозат хориҷ шуд.",
        "ru": "{who} убран из списка допуска.",
        "en": "{who} is off the allow-list.",
    },
    T.BLOCKED: {
        "tg": "Бубахшед, дастрасии шумо ба Соро қатъ карда шуд.",
        "ru": "Извините, ваш доступ к Соро закрыт.",
        "en": "Sorry, your access to Soro has been closed.",
    },
    T.NOT_ALLOWED: {
        "tg": "Бубахшед, Соро ҳоло танҳо барои иштирокчиёни озмоиш кор мекунад.",
        "ru": "Извините, сейчас Соро работает только для участников пилота.",
        "en": "Sorry, for now Soro serves only the members of a pilot.",
    },
    T.FEEDBACK_THANKS: {
        "tg": "Ташаккур барои баҳо!",
        "ru": "Спасибо за оценку!",
        "en": "Thanks for the rating!",
    },
    T.FEEDBACK_CHANGED: {
        "tg": "Хуб, баҳо иваз шуд.",
        "ru": "Хорошо, оценка изменена.",
        "en": "Fine, rating changed.",
    },
    T.FEEDBACK_GONE: {
        "tg": "Ин ҷавоб дигар нигоҳ дошта намешавад.",
        "ru": "Этот ответ больше не хранится.",
        "en": "This answer is no longer stored.",
    },
    T.FEEDBACK_WHY: {
        "tg": "Чӣ нодуруст буд? Агар хоҳед, бо як сатр нависед.",
        "ru": "Что было не так? Если хотите, напишите одной строкой.",
        "en": "What was wrong? If you like, tell me in one line.",
    },
    T.FEEDBACK_COMMENT_THANKS: {
        "tg": "Ташаккур! Инро ба инобат мегирем.",
        "ru": "Спасибо! Мы это учтём.",
        "en": "Thank you! We will take it into account.",
    },
    T.SMS_STOPPED: {
        "tg": "Шумо аз SMS-ҳои Соро баромадед. Барои баргаштан НАВ нависед.",
        "ru": "Вы отписались от SMS Соро. Чтобы вернуться, напишите НАВ.",
        "en": "You have left Soro's SMS. To come back, send NEW.",
    },
    T.SMS_WELCOME_BACK: {
        "tg": "Хуш омадед! Суҳбати нав сар шуд. Саволатонро нависед.",
        "ru": "С возвращением! Начали новый разговор. Пишите вопрос.",
        "en": "Welcome back! A new conversation has started. Ask away!",
    },
    T.SMS_QUOTA: {
        "tg": "Имрӯз SMS-ҳои шумо тамом шуданд. Фардо боз нависед!",
        "ru": "На сегодня ваши SMS закончились. Напишите завтра!",
        "en": "Your SMS for today are used up. Write again tomorrow!",
    },
    T.SMS_UNREADABLE: {
        "tg": "Паёматонро хонда натавонистам. Лутфан онро боз фиристед.",
        "ru": "Не смог прочитать сообщение. Пожалуйста, отправьте его снова.",
        "en": "I could not read your message. Please send it again.",
    },
    T.SMS_FORGOTTEN: {
        "tg": "Ҳамаи маълумоти шумо нест карда шуд. Хайр!",
        "ru": "Все ваши данные удалены. До свидания!",
        "en": "All your data has been deleted. Goodbye!",
    },
}


def text(key: T, language: str = "tg", **values: object) -> str:
    """The text ``key`` in ``language`` (Tajik when the language is unknown), with ``values`` filled in."""
    variants = TEXTS[key]
    return variants.get(language, variants["tg"]).format(**values)
