"""Storage tests use the database fixtures of tests/conftest.py (`database_url`, `engine`,
`repo`): SQLite always, PostgreSQL as well when PAPERFEED_TEST_PG_URL is set."""
