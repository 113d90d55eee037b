"""URLs of the flags app."""

from django.urls import path

from flags.views import ConfigView

urlpatterns = [
    path("config", ConfigView.as_view(), name="config"),
]
