"""URLs of the ingest app."""

from django.urls import path

from ingest import views

urlpatterns = [
    path("v1/events", views.events, name="events"),
]
