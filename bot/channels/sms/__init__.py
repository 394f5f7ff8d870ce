"""SMS through Kannel (or another gateway behind ``SmsGateway``): answers within a paid segment budget."""

from bot.channels.sms.channel import SmsChannel, sms_turn_options
from bot.channels.sms.dispatch import CHANNEL

__all__ = ["CHANNEL", "SmsChannel", "sms_turn_options"]
