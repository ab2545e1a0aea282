"""One parser per scholarly format. Each turns bytes into Records or Quarantined items, streaming."""

# What ingestion writes into `source_format` (each parser module's FORMAT): the values a source filter takes.
SOURCE_FORMATS = ("crossref", "jats", "jsonl", "medline", "openalex")
