"""paperfeed's benchmarks: ingest, search, fan-out, memory, interactive replies and delivery
through faults; run them with `python -m bench.run`.

Nothing here is imported by the bot. Generated data lives in a temporary folder (or the
`--workdir` given), never in the repository.
"""
