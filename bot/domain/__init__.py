"""The pure core: plain data and functions over it, no I/O, no Telegram, no database, no clock."""
