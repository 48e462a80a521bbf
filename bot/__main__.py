"""`python -m bot` is the same CLI as the `paperfeed` console script."""

from bot.cli import main

if __name__ == "__main__":
    main()
