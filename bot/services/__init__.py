"""Use cases over the pure core and the archive: ingest, delivery, repost."""
