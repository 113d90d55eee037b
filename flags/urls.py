"""URLs of the flags app."""

urlpatterns: list = []
