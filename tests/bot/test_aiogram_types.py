"""A bot process builds aiogram's types when it first uses each, and every one of them still builds and works.

Each check runs in a fresh interpreter: this one imported aiogram long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from bot.channels.telegram.sender import feedback_keyboard


def run(probe: str) -> dict[str, object]:
    script = "import bot\n" + textwrap.dedent(probe)
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_the_bot_builds_none_of_aiogram_s_types() -> None:
    result = run(
        """
        import json
        import bot.app
        from aiogram import types
        from pydantic import BaseModel
        models = [getattr(types, name) for name in types.__all__]
        models = [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
        print(json.dumps({"models": len(models), "built": sum(m.__pydantic_complete__ for m in models)}))
        """
    )
    assert result["models"] > 300  # type: ignore[operator]
    assert result["built"] == 0


def test_an_update_a_reply_and_its_response_work_as_with_aiogram_s_own_import() -> None:
    markup = feedback_keyboard("0b7e4c52-1f1e-4c1a-9a43-6d3f0f6a2d10").model_dump(exclude_none=True)
    result = run(
        f"""
        import json
        from aiogram.methods import SendMessage
        from aiogram.methods.base import Response
        from aiogram.types import InlineKeyboardMarkup, Update
        message = {{"message_id": 5, "date": 1, "chat": {{"id": 7, "type": "private"}}, "text": "Салом",
                    "from": {{"id": 7, "is_bot": False, "first_name": "Ali"}}}}
        update = Update.model_validate({{"update_id": 1, "message": message}})
        tap = Update.model_validate({{"update_id": 2, "callback_query": {{"id": "9", "chat_instance": "1",
            "from": message["from"], "data": "fb:u", "message": message}}}})
        markup = InlineKeyboardMarkup.model_validate({json.dumps(markup)})
        call = SendMessage(chat_id=7, text="Ҷавоб", reply_markup=markup)
        sent = Response[SendMessage.__returning__].model_validate({{"ok": True, "result": message}})
        print(json.dumps({{
            "text": update.message.text, "sender": update.message.from_user.first_name,
            "tapped": tap.callback_query.message.message_id,
            "call": call.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
            "sent": sent.result.message_id,
        }}))
        """
    )
    assert result == {
        "text": "Салом",
        "sender": "Ali",
        "tapped": 5,
        "call": {"chat_id": 7, "text": "Ҷавоб", "reply_markup": markup},
        "sent": 5,
    }


def test_every_type_every_method_and_every_method_s_response_builds() -> None:
    result = run(
        """
        import json
        from aiogram import methods, types
        from aiogram.methods.base import Response
        from pydantic import BaseModel
        failed = []
        def build(name, model):
            try:
                model.__pydantic_validator__.validate_python  # the first use builds it
            except Exception as exc:
                failed.append(f"{name}: {exc}")
        for module in (types, methods):
            for name in module.__all__:
                model = getattr(module, name)
                if isinstance(model, type) and issubclass(model, BaseModel):
                    build(name, model)
                    method = issubclass(model, methods.TelegramMethod) and model is not methods.TelegramMethod
                    if method:
                        build(f"Response of {name}", Response[model.__returning__])
        print(json.dumps({"failed": failed}))
        """
    )
    assert result == {"failed": []}
