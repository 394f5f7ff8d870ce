"""The bot: channels, the pipeline from an accepted message to its delivered answer, and their store."""

from bot import aiogram_types

# Before any module of the bot imports aiogram, so that none of them pays for building all its types.
aiogram_types.defer()
