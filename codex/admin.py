"""Admin building blocks shared by the apps."""

from django.contrib import admin


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Rows written only by the service (ledgers, audit logs): operators read, never edit."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ServiceAddMixin:
    """An add form whose write is one service call: `add_via_service` returns the saved row.

    Django's add view saves the form's unsaved instance; here the service writes (in its own
    transaction, with its audit row) and the view carries on with the row it returns (change
    message, LogEntry, redirect), so no unsaved object is made to look saved. A change goes
    through `change_via_service`.
    """

    def add_via_service(self, request, form):
        raise NotImplementedError

    def change_via_service(self, request, obj, form) -> None:
        raise NotImplementedError

    def save_form(self, request, form, change):
        if change:
            return super().save_form(request, form, change)
        return self.add_via_service(request, form)

    def save_model(self, request, obj, form, change):
        if change:
            self.change_via_service(request, obj, form)

    def save_related(self, request, form, formsets, change):
        if change:  # an added row's related rows are its service's to write
            super().save_related(request, form, formsets, change)
