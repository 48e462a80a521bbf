"""The archive: SQLAlchemy tables, engine and migrations, repositories, full-text search."""
