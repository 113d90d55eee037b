"""URLs of the ingest app."""

urlpatterns: list = []
