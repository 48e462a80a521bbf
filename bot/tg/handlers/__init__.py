"""Telegram handlers, one module per concern; all registered in bot.tg.app."""
