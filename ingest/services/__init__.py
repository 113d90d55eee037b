"""Writes of the ingest app, one module per stage: accept, enrich, deadletters, replay."""
