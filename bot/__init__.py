"""paperfeed: a Telegram bot that turns a folder of paper digests into a subscribable feed."""

__version__ = "0.1.0"
