"""A loopback Bot API server as strict as Telegram, for end-to-end tests of the bot.

server.py speaks the Bot API over HTTP (python-telegram-bot points its ``base_url`` at
it); validation.py and telegram_html.py refuse what Telegram would refuse; faults.py
injects flood control, 5xx answers and dropped connections; ptb_harness.py runs a real
python-telegram-bot Application against it and waits for it to settle.
"""
