"""URLs of the ingest app."""

from django.urls import path

from ingest import views

urlpatterns = [
    path("v1/events", views.EventsView.as_view(), name="events"),
]
